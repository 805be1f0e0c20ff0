"""`emonet weights`: download, locate, verify and convert every model family's weights (no torch
needed, but for `convert`)."""

from __future__ import annotations

from pathlib import Path

import click

from emonet_cli.models.published import WeightsLookup
from emonet_cli.models.registry import DEFAULT_FAMILY, weights_lookups

LOOKUPS = weights_lookups()
CONVERTIBLE = ("emotic",)  # the families whose published files are converted before use


def model_argument():
    return click.argument(
        "model",
        type=click.Choice(tuple(LOOKUPS)),
        default=DEFAULT_FAMILY,
        required=False,
        metavar="[MODEL]",
    )


def nclass_option(allow_all: bool):
    choices = "5, 8 or all" if allow_all else "5 or 8"
    return click.option(
        "--nclass",
        metavar="N|all" if allow_all else "N",
        help=f"Which file of a family with several: for emonet {choices} expression classes.  "
        "[default: 8 for emonet; the only file of the others]",
    )


def chosen_files(lookup: WeightsLookup, nclass: str | None, allow_all: bool) -> list[int]:
    """The class counts of the files --nclass asks for, or the usage error naming those the
    family has."""
    if nclass is None:
        return [lookup.nclass]
    if allow_all and nclass == "all":
        return list(lookup.files)
    if nclass.isdigit() and int(nclass) in lookup.files:
        return [int(nclass)]
    if lookup.several:
        counts = "- and ".join(map(str, lookup.files))
        has = f"the {counts}-class files{' (or all)' if allow_all else ''}"
    else:
        has = f"only the {lookup.nclass}-class file: leave --nclass out"
    raise click.BadParameter(f"{nclass!r}: {lookup.family} has {has}", param_hint="'--nclass'")


@click.group("weights")
def weights_group() -> None:
    """Download, find and check the models' weights files.

    MODEL is emonet (the default), rbdm or emotic. Each family's file is looked for in order:
    --weights FILE, its variable ($EMONET_WEIGHTS, $EMONET_RBDM_WEIGHTS,
    $EMONET_EMOTIC_WEIGHTS: a file or folder), the checkout's weights/ folder, then the user
    cache folder, where downloads and conversions go. More: docs/models.md.

    \b
    Examples:
      emonet weights fetch --nclass all
      emonet weights list"""


@weights_group.command("fetch")
@model_argument()
@nclass_option(allow_all=True)
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to download into.  [default: the user cache folder]",
)
def weights_fetch(model: str, nclass: str | None, dest: Path | None) -> None:
    """Download a model's published weights and check them.

    Prints the path of each file; a verified file already there is not downloaded again; the
    SHA-256 is checked before the file is renamed into place. EMOTIC's files cannot be
    downloaded: the error says where to get them.

    \b
    Examples:
      emonet weights fetch
      emonet weights fetch --nclass all
      emonet weights fetch rbdm --dest shared-weights/"""
    from emonet_cli.models.weights import fetch_weights

    lookup = LOOKUPS[model]
    for n in chosen_files(lookup, nclass, allow_all=True):
        click.echo(fetch_weights(n, dest_dir=dest, lookup=lookup))


def file_heading(lookup: WeightsLookup, nclass: int) -> str:
    from emonet_cli.models.weights import expected_weights

    expected = expected_weights(nclass, lookup)
    model = f"{lookup.family} {nclass}-class model" if lookup.several else f"{lookup.family} model"
    if not expected.sha256:
        return f"{model}: {expected.filename}, made here (no published SHA-256)"
    return f"{model}: {expected.filename}, SHA-256 {expected.sha256}"


@weights_group.command("list")
def weights_list() -> None:
    """Show where the weights are looked for and what is found.

    Places are listed in resolution order; '*' marks the file that would be used, and
    'verified' means its SHA-256 is the published one. A file made here (EMOTIC's converted
    file) is 'present' with its SHA-256, the one `emonet weights convert` printed.

    \b
    Example:
      emonet weights list"""
    from emonet_cli.models.weights import cache_dir, expected_weights, weights_inventory

    for lookup in LOOKUPS.values():
        for n in lookup.files:
            click.echo(file_heading(lookup, n))
            rows = weights_inventory(n, lookup)
            source_width = max(len(row.source) for row in rows)
            path_width = max(len(str(row.path)) for row in rows)
            for row in rows:
                marker = "*" if row.selected else " "
                line = f"  {marker} {row.source:<{source_width}}  {str(row.path):<{path_width}}  "
                click.echo(line + row.verdict)
            if not any(row.selected for row in rows):
                if expected_weights(n, lookup).url:
                    remedy = f"`{lookup.fetch_command(n)}` downloads it to {cache_dir()}"
                else:
                    remedy = lookup.how_to_get
                click.echo(f"  none found: {remedy}")


@weights_group.command("path")
@model_argument()
@nclass_option(allow_all=False)
def weights_path(model: str, nclass: str | None) -> None:
    """Print the weights file that a run would use, for scripts.

    For EMOTIC this may be the folder of its published files. Exit status 1 when there is
    none.

    \b
    Examples:
      emonet weights path --nclass 8
      emonet weights path rbdm"""
    from emonet_cli.models.weights import find_weights, weights_not_found

    lookup = LOOKUPS[model]
    (n,) = chosen_files(lookup, nclass, allow_all=False)
    found = find_weights(n, lookup=lookup)
    if found is None:
        raise weights_not_found(n, lookup=lookup)
    click.echo(found)


@weights_group.command("convert")
@click.argument("model", type=click.Choice(CONVERTIBLE))
@click.argument("src_dir", type=click.Path(path_type=Path))
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the converted file into.  [default: the user cache folder]",
)
def weights_convert(model: str, src_dir: Path, dest: Path | None) -> None:
    """Turn a model's published files into a safe weights file.

    SRC_DIR holds the published files. EMOTIC's published files (model_context1.pth,
    model_body1.pth, model_emotic1.pth, val_thresholds.npy) are whole pickled models; they are read
    without running any code from them, checked, and written once as a plain state dict
    (emotic_converted.pth), which is looked for like any weights file. Prints its path and SHA-256.

    \b
    Example:
      emonet weights convert emotic emotic_downloads/"""
    from emonet_cli.models.emotic.safeload import convert_emotic
    from emonet_cli.models.weights import cache_dir, expected_weights

    lookup = LOOKUPS[model]
    target = (dest or cache_dir()) / expected_weights(lookup.nclass, lookup).filename
    sha256 = convert_emotic(src_dir, target)
    click.echo(target)
    click.echo(f"SHA-256 {sha256}")
