"""Writing the module into a DISCOVER modules folder (DISCOVER_CML_DIR): one trainer per model
family (EmoNet's, RBDM's), a short script that imports their processors from the installed
package, the requirements.txt DISCOVER installs into the module's own environment (emonet-cli
with every extra a trainer needs), and a version.py.

The trainers share one folder: DISCOVER makes an environment per module folder (named by the
folder of the request's trainerFilePath), so both run in one install of emonet-cli and torch.
DISCOVER installs the requirements only when it creates that environment, and names it
`<folder>@<version.py's __version__>`: writing our version there gives each emonet-cli release
its own environment, so an upgrade reaches DISCOVER."""

from __future__ import annotations

import os
import re
from pathlib import Path

from emonet_cli import __version__
from emonet_cli.discover.spec import MODULES, SCRIPT_NAME, trainer_xml
from emonet_cli.errors import EmonetError
from emonet_cli.formats.fileio import atomic_open

MODULE_FOLDER = "emonet_cli"
PACKAGE_NAME = re.compile(r"emonet[-_.]cli(?![\w.-])", re.IGNORECASE)
GIVEN_EXTRAS = re.compile(r"\s*\[([^\]]*)\]")
DISTRIBUTION_SUFFIXES = (".whl", ".tar.gz", ".zip")
# The extras the trainers need in DISCOVER's environment: h5py reads RBDM's weights.
MODULE_EXTRAS = ("rbdm",)
# resolve_file_uri (file outputs given as uri_template) came with 1.2.
DISCOVER_UTILS_REQUIREMENT = "hcai-discover-utils>=1.2"
VERSION_TEMPLATE = '''"""emonet-cli version of this module: DISCOVER names its environment
emonet_cli@<__version__>, so each release is installed into an environment of its own."""

__version__ = "{version}"
'''

SCRIPT_TEMPLATE = '''"""DISCOVER module script of emonet-cli (`emonet discover-module install`).

The processors live in the emonet-cli package that DISCOVER installs from requirements.txt
into an environment named after version.py; reinstall the module after upgrading emonet-cli,
so that trainers and package agree and DISCOVER builds the new version's environment.
"""

import emonet_cli
from discover_utils.utils.log_utils import log
from emonet_cli.discover.processor import {processors}  # noqa: F401 (the trainers' create)

INSTALLED_FOR = "{version}"
if emonet_cli.__version__ != INSTALLED_FOR:
    log(
        f"emonet: warning: this module was installed for emonet-cli {{INSTALLED_FOR}} but "
        f"{{emonet_cli.__version__}} is installed; run `emonet discover-module install` again"
    )
'''


class InstallError(EmonetError):
    """The module cannot be installed where or as asked."""


def install_module(modules_dir: str | Path, requirement: str | None = None) -> Path:
    """Write the module into `modules_dir/emonet_cli/`, its trainers emonet_cli.trainer and
    emonet_cli_rbdm.trainer (replacing the files of an earlier install), and return that
    folder. `requirement` is what DISCOVER pip-installs: by default
    `emonet-cli==<this version>`; a local folder, wheel or sdist becomes an absolute
    `emonet-cli @ file://...` reference; any other text is used as written (it must name
    emonet-cli)."""
    modules_dir = Path(modules_dir).expanduser()
    if not modules_dir.is_dir():
        raise InstallError(
            f"{modules_dir}: no such folder (give DISCOVER's modules folder, its DISCOVER_CML_DIR)"
        )
    line = requirement_line(requirement)
    folder = modules_dir / MODULE_FOLDER
    if folder.exists() and not folder.is_dir():
        raise InstallError(f"{folder} exists and is not a folder")
    processors = ", ".join(spec.processor_class for spec in MODULES)
    files = {
        **{spec.trainer_name: trainer_xml(spec) for spec in MODULES},
        SCRIPT_NAME: SCRIPT_TEMPLATE.format(processors=processors, version=__version__),
        "version.py": VERSION_TEMPLATE.format(version=__version__),
        "requirements.txt": f"{line}\n{DISCOVER_UTILS_REQUIREMENT}\n",
    }
    try:
        folder.mkdir(exist_ok=True)
        for name, text in files.items():
            with atomic_open(folder / name, "w", encoding="utf-8") as f:
                f.write(text)
    except OSError as error:
        raise InstallError(f"cannot write to {folder}: {error.strerror or error}") from None
    return folder


def requirement_line(requirement: str | None = None) -> str:
    """The requirements.txt line that installs emonet-cli, with the trainers' extras
    (MODULE_EXTRAS), in DISCOVER's module environment. Paths are made absolute: DISCOVER
    installs from a copy of the file in a temporary folder."""
    extras = f"emonet-cli[{','.join(MODULE_EXTRAS)}]"
    if requirement is None:
        return f"{extras}=={__version__}"
    text = requirement.strip()
    if not text or "\n" in text:
        raise InstallError(f"the requirement must be one line, not {requirement!r}")
    path = Path(text).expanduser()
    if path.is_dir():
        if not any((path / name).is_file() for name in ("setup.cfg", "pyproject.toml")):
            raise InstallError(f"{path}: not a Python project folder (no setup.cfg or pyproject)")
        return f"{extras} @ {path.resolve().as_uri()}"
    if path.is_file():
        if not path.name.lower().endswith(DISTRIBUTION_SUFFIXES):
            raise InstallError(
                f"{path}: not a wheel or sdist (a {', '.join(DISTRIBUTION_SUFFIXES)} file)"
            )
        return f"{extras} @ {path.resolve().as_uri()}"
    if looks_like_a_path(text):
        raise InstallError(f"{text}: no such file or folder (the --requirement path)")
    name = PACKAGE_NAME.match(text)
    if not name:
        raise InstallError(
            f"the requirement {text!r} does not install emonet-cli: give e.g. "
            f"'emonet-cli=={__version__}', or the path of a checkout, wheel or sdist"
        )
    rest = text[name.end() :]
    given = GIVEN_EXTRAS.match(rest)
    wanted = [e.strip() for e in given[1].split(",") if e.strip()] if given else []
    wanted += [extra for extra in MODULE_EXTRAS if extra not in wanted]
    return f"{name[0]}[{','.join(wanted)}]{rest[given.end() :] if given else rest}"


def looks_like_a_path(text: str) -> bool:
    """Whether a requirement that names no existing file was meant as one: a path with a
    folder part or a distribution's suffix, not a requirement line (`emonet-cli @ URL`) or
    a URL."""
    if PACKAGE_NAME.match(text) or "://" in text:
        return False
    return (
        "/" in text
        or os.sep in text
        or text.startswith(("~", "."))
        or text.lower().endswith(DISTRIBUTION_SUFFIXES)
    )
