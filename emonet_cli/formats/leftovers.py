"""Results of an earlier run that this run did not write: removed once this run's files are
published, so that a folder describes the last run only (a reader never takes an earlier run's
`S.face3.csv` for a person of this one).

What counts as an earlier run's result is narrow, so that nothing else is ever removed: the
files an earlier summary (`S.emonet.json`) lists as its outputs, and files named as one
person's results (`S.<label><suffix>` for the suffixes the caller names, a label being what
`person_labels.is_person_label` says: `faceN`, or one of the gallery names the caller names,
and `S.faces.csv`).
Never removed: this run's own files, its inputs (the media and box files), anything that is
not a regular file, and part files (a live writer's files are part files until published)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from emonet_cli.formats.person_labels import is_person_label

FACES_OVERVIEW = ".faces.csv"
DATA_MARK = "~"  # an SSI stream's or NOVA annotation's data file: the header's name + "~"


def earlier_outputs(summary: Path) -> list[Path]:
    """The files an earlier analysis lists in its summary, by name in the summary's folder
    (the paths it recorded may be relative to another working folder)."""
    try:
        document = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, list):
        return []
    return [summary.parent / Path(name).name for name in outputs if isinstance(name, str)]


def person_results(
    folder: Path, stem: str, suffixes: Iterable[str], names: Iterable[str] = ()
) -> list[Path]:
    """`stem.<label><suffix>` for each suffix in `folder` (a label: faceN or one of `names`,
    the gallery's), and the overview `stem.faces.csv`."""
    suffixes, gallery = set(suffixes), frozenset(names)
    prefix = f"{stem}."
    found = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    for name in names:
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        label, dot, suffix = rest.partition(".")
        if name == stem + FACES_OVERVIEW or (
            is_person_label(label, gallery) and dot and f".{suffix}" in suffixes
        ):
            found.append(folder / name)
    return found


def remove_leftovers(
    candidates: Iterable[Path], written: Iterable[Path], inputs: Iterable[Path]
) -> list[Path]:
    """Remove each candidate (a header with its `~` data file) that this run did not write and
    that is none of its `inputs`; returns what was removed."""
    written_names = {os.path.abspath(path) for path in written}
    kept = {identity for path in inputs for identity in _identities(path)}
    removed = []
    for header in dict.fromkeys(candidates):
        if os.path.abspath(header) in written_names:
            continue  # its data file, if any, is this run's too
        for path in (header, header.with_name(header.name + DATA_MARK)):
            if os.path.abspath(path) in written_names or kept & set(_identities(path)):
                continue
            if path.is_symlink() or not path.is_file():
                continue
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


def _identities(path: Path) -> list[tuple]:
    """What makes a file the same as another: its device and inode, for the file and for a
    stream header's data file."""
    found = []
    for candidate in (Path(path), Path(f"{path}{DATA_MARK}")):
        try:
            status = candidate.stat()
        except OSError:
            continue
        found.append((status.st_dev, status.st_ino))
    return found
