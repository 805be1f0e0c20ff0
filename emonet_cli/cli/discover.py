"""`emonet discover-module install`: put the DISCOVER module into a DISCOVER modules folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("discover-module")
def discover_group() -> None:
    """emonet-cli as a DISCOVER module (hcmlab's NOVA processing server)."""


@discover_group.command("install")
@click.argument("modules_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--requirement",
    help="What DISCOVER pip-installs into the module's environment: a checkout folder, wheel "
    "or sdist (by absolute path), or a requirement line; the rbdm extra is added.  "
    "[default: emonet-cli[rbdm]==VERSION]",
)
def discover_install(modules_dir: Path, requirement: str | None) -> None:
    """Write the module into MODULES_DIR/emonet_cli (DISCOVER's DISCOVER_CML_DIR): its
    trainers (EmoNet's and RBDM's), script, requirements.txt and version.py (DISCOVER builds
    one environment per version). Exit status: 0 done, 1 failed."""
    from emonet_cli.discover.install import install_module
    from emonet_cli.discover.spec import MODULES

    folder = install_module(modules_dir, requirement)
    line = (folder / "requirements.txt").read_text(encoding="utf-8").splitlines()[0]
    trainers = ", ".join(spec.trainer_name for spec in MODULES)
    click.echo(f"installed the DISCOVER module in {folder}, trainers {trainers} (requires: {line})")
