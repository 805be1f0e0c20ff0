"""`emonet discover-module install`: put the DISCOVER module into a DISCOVER modules folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("discover-module")
def discover_group() -> None:
    """Run emonet-cli as a module of a DISCOVER server.

    DISCOVER is the processing server of the NOVA annotation tool.

    More: docs/discover.md.

    \b
    Example:
      emonet discover-module install discover/modules"""


@discover_group.command("install")
@click.argument("modules_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--requirement",
    help="What DISCOVER pip-installs into the module's environment: a checkout folder, wheel "
    "or sdist (by absolute path), or a requirement line; the rbdm extra is added.  "
    "[default: emonet-cli[rbdm]==VERSION]",
)
def discover_install(modules_dir: Path, requirement: str | None) -> None:
    """Install emonet-cli into the modules folder of DISCOVER.

    It writes MODULES_DIR/emonet_cli (MODULES_DIR is DISCOVER's DISCOVER_CML_DIR): its
    trainers (EmoNet's and RBDM's), script, requirements.txt (emonet-cli with the rbdm extra)
    and version.py (DISCOVER builds one environment per version, so an upgrade gets its own).
    Exit status: 0 done, 1 failed. More: docs/discover-server.md.

    
    Example:
      emonet discover-module install discover/modules"""
    from emonet_cli.discover.install import install_module
    from emonet_cli.discover.spec import MODULES

    folder = install_module(modules_dir, requirement)
    line = (folder / "requirements.txt").read_text(encoding="utf-8").splitlines()[0]
    trainers = ", ".join(spec.trainer_name for spec in MODULES)
    click.echo(f"installed the DISCOVER module in {folder}, trainers {trainers} (requires: {line})")
