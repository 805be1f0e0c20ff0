"""Results of an earlier run that this run did not write: removed once this run's files are
published, so that a folder describes the last run only (a reader never takes an earlier run's
`S.face3.csv` for a person of this one).

What counts as an earlier run's result is narrow, so that nothing else is ever removed: only a
name this tool writes for the input `S` in that folder (`result_name`): `S<suffix>` and one
person's `S.<label><suffix>` for the suffixes the caller names (those of the outputs it can
write; a label being what `person_labels.is_person_label` says: `faceN`, or one of the gallery
names the caller names), and `S.faces.csv`; with an SSI or NOVA header (`.stream`,
`.annotation`), its `~` data file. An earlier summary's (`S.emonet.json`) list of outputs only
says which of those names to look for: a name it lists that is none of them (a user's `S.mp4`
or `S.notes.txt`, a file of another folder, a hand-edited or foreign summary) is never touched.
Never removed either: this run's own files, its inputs (the media and box files), anything that
is not a regular file, and part files (a live writer's files are part files until published)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from emonet_cli.formats.person_labels import is_person_label

FACES_OVERVIEW = ".faces.csv"
DATA_MARK = "~"  # an SSI stream's or NOVA annotation's data file: the header's name + "~"
HEADER_SUFFIXES = (".stream", ".annotation")  # the files that have a `~` data file


def result_name(name: str, stem: str, suffixes: Iterable[str], names: Iterable[str] = ()) -> bool:
    """Whether `name` is one this tool writes for the input `stem`: `stem<suffix>`,
    `stem.<person><suffix>` for a person's label (`face3`, or one of the gallery's `names`), or
    `stem.faces.csv`."""
    if not name.startswith(f"{stem}."):
        return False
    rest = name[len(stem) :]
    if rest == FACES_OVERVIEW or rest in suffixes:
        return True
    label, dot, suffix = rest[1:].partition(".")
    return bool(is_person_label(label, names) and dot and f".{suffix}" in suffixes)


def earlier_outputs(
    summary: Path, stem: str, suffixes: Iterable[str], names: Iterable[str] = ()
) -> list[Path]:
    """The results (`result_name`) of the input `stem` that an earlier analysis lists in its
    summary, by name in the summary's folder (the paths it recorded may be relative to another
    working folder); a data file (`X.stream~`) stands for its header. Other names it lists are
    left out, whatever the summary says."""
    try:
        document = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, list):
        return []
    suffixes, gallery = set(suffixes), frozenset(names)
    found = []
    for recorded in outputs:
        if not isinstance(recorded, str):
            continue
        name = Path(recorded).name
        if name.endswith(DATA_MARK) and name[: -len(DATA_MARK)].endswith(HEADER_SUFFIXES):
            name = name[: -len(DATA_MARK)]
        if result_name(name, stem, suffixes, gallery):
            found.append(summary.parent / name)
    return found


def person_results(
    folder: Path, stem: str, suffixes: Iterable[str], names: Iterable[str] = ()
) -> list[Path]:
    """`stem.<label><suffix>` for each suffix in `folder` (a label: faceN or one of `names`,
    the gallery's), and the overview `stem.faces.csv`."""
    suffixes, gallery = set(suffixes), frozenset(names)
    try:
        listed = sorted(os.listdir(folder))
    except OSError:
        return []
    return [
        folder / name
        for name in listed
        if result_name(name, stem, suffixes, gallery) and name[len(stem) :] not in suffixes
    ]


def remove_leftovers(
    candidates: Iterable[Path], written: Iterable[Path], inputs: Iterable[Path]
) -> list[Path]:
    """Remove each candidate (with its `~` data file, for an SSI or NOVA header) that this run
    did not write and that is none of its `inputs`; returns what was removed."""
    written_names = {os.path.abspath(path) for path in written}
    kept = {identity for path in inputs for identity in _identities(path)}
    removed = []
    for header in dict.fromkeys(candidates):
        if os.path.abspath(header) in written_names:
            continue  # its data file, if any, is this run's too
        pair = [header]
        if header.name.endswith(HEADER_SUFFIXES):
            pair.append(header.with_name(header.name + DATA_MARK))
        for path in pair:
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
