"""`emonet weights`: download, locate and verify the published weights (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import click

from emonet_cli.constants import NCLASS_CHOICES


@click.group("weights")
def weights_group() -> None:
    """Download, locate and verify the EmoNet weights.

    Looked for in order: --weights FILE, $EMONET_WEIGHTS (file or folder), the checkout's
    weights/ folder, then the user cache folder, where downloads go."""


@weights_group.command("fetch")
@click.option(
    "--nclass",
    type=click.Choice(["5", "8", "all"]),
    default="8",
    show_default=True,
    help="Which model: 5 or 8 expression classes, or both.",
)
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to download into.  [default: the user cache folder]",
)
def weights_fetch(nclass: str, dest: Path | None) -> None:
    """Download the published weights and check their SHA-256.

    Prints the path of each file; a verified file already there is not downloaded again."""
    from emonet_cli.models.weights import fetch_weights

    for n in (5, 8) if nclass == "all" else (int(nclass),):
        click.echo(fetch_weights(n, dest_dir=dest))


@weights_group.command("list")
def weights_list() -> None:
    """Show where the weights are looked for and what is there.

    Places are listed in resolution order; '*' marks the file that would be used, and
    'verified' means its SHA-256 is the published one."""
    from emonet_cli.models.weights import cache_dir, expected_weights, weights_inventory

    for n in NCLASS_CHOICES:
        expected = expected_weights(n)
        click.echo(f"{n}-class model: {expected.filename}, SHA-256 {expected.sha256}")
        rows = weights_inventory(n)
        source_width = max(len(row.source) for row in rows)
        path_width = max(len(str(row.path)) for row in rows)
        for row in rows:
            marker = "*" if row.selected else " "
            line = f"  {marker} {row.source:<{source_width}}  {str(row.path):<{path_width}}  "
            click.echo(line + row.verdict)
        if not any(row.selected for row in rows):
            click.echo(
                f"  none found: `emonet weights fetch --nclass {n}` downloads it to {cache_dir()}"
            )


@weights_group.command("path")
@click.option(
    "--nclass",
    type=click.Choice(["5", "8"]),
    default="8",
    show_default=True,
    help="Which model: 5 or 8 expression classes.",
)
def weights_path(nclass: str) -> None:
    """Print the weights file that would be used (exit 1 if none)."""
    from emonet_cli.models.weights import find_weights, weights_not_found

    found = find_weights(int(nclass))
    if found is None:
        raise weights_not_found(int(nclass))
    click.echo(found)
