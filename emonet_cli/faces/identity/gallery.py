"""A gallery: known people's names and descriptors, so that a participant gets the same name
(`S.<name>.*`, NOVA role `S.<name>`) in every input of a corpus. Numpy only; a folder of photos
is described by the caller's describer.

The file is JSON:

    {"format": "emonet-people", "version": 1,
     "descriptor": {"name": "dlib_face_recognition_resnet_model_v1", "version": 1, "size": 128},
     "people": [{"name": "alice", "descriptors": [[128 numbers], ...]}, ...]}

A gallery of another descriptor model (or another version of it) is refused: its distances mean
nothing to this one. Names follow `formats.person_labels` (a name is a file name's part).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emonet_cli.errors import FormatError
from emonet_cli.faces.identity.rule import KEPT_PER_PERSON, PeopleBook
from emonet_cli.formats.fileio import atomic_open, unreadable_reason
from emonet_cli.formats.person_labels import name_problem
from emonet_cli.media.frames import IMAGE_SUFFIXES

FORMAT = "emonet-people"
VERSION = 1


@dataclass(frozen=True, eq=False)
class Gallery:
    """Known people, in order (person K of a run with this gallery is `names[K - 1]`), each
    with their descriptors ((k, size) float32), described by `model` (descriptor.MODEL)."""

    names: tuple[str, ...]
    descriptors: tuple[np.ndarray, ...]
    model: dict
    source: str = ""  # where it came from, for the summary

    def book(self) -> tuple[PeopleBook, dict[int, str]]:
        """The rule's book of these people (numbers 1..G) and their names by number."""
        book = PeopleBook()
        for number, kept in enumerate(self.descriptors, start=1):
            book.kept[number] = np.asarray(kept, dtype=np.float32)
        book.note_apart(set(range(1, len(self.names) + 1)))  # a gallery's people differ
        return book, dict(enumerate(self.names, start=1))

    def describe(self) -> dict:
        """What the summary records of the gallery."""
        return {"source": self.source, "names": list(self.names)}


def read_gallery(path: Path, model: dict) -> Gallery:
    """The gallery in `path`; a FormatError naming the file for anything else (unreadable,
    damaged, another format or descriptor model, bad names or descriptors)."""
    problem = unreadable_reason(path)
    if problem is not None:
        raise FormatError(f"{path}: people file: {problem}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise FormatError(f"{path}: people file is not UTF-8 text") from None
    except ValueError as error:
        raise FormatError(f"{path}: people file is damaged (not JSON: {error})") from None
    except OSError as error:
        raise FormatError(f"{path}: cannot read ({error.strerror or error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise FormatError(f"{path}: not a people file (written by --save-people)")
    if document.get("version") != VERSION:
        raise FormatError(
            f"{path}: people file version {document.get('version')!r}, this emonet reads "
            f"version {VERSION}"
        )
    written_by = document.get("descriptor")
    if not isinstance(written_by, dict) or any(
        written_by.get(key) != model[key] for key in ("name", "version", "size")
    ):
        found = written_by if isinstance(written_by, dict) else {}
        raise FormatError(
            f"{path}: people described by another model ({found.get('name')!r} version "
            f"{found.get('version')!r}); this emonet uses {model['name']} version "
            f"{model['version']}: make the gallery again from photos"
        )
    return _gallery(path, document.get("people"), model)


def _gallery(path: Path, people, model: dict) -> Gallery:
    if not isinstance(people, list) or not people:
        raise FormatError(f"{path}: people file lists no people")
    names, descriptors = [], []
    for k, person in enumerate(people, start=1):
        where = f"{path}: person {k}"
        name = person.get("name") if isinstance(person, dict) else None
        if not isinstance(name, str):
            raise FormatError(f"{where}: no name")
        problem = name_problem(name)
        if problem is not None:
            raise FormatError(f"{where}: name {name!r} cannot be used: {problem}")
        if name.lower() in (n.lower() for n in names):
            raise FormatError(f"{where}: name {name!r} appears twice")
        try:
            kept = np.array(person.get("descriptors"), dtype=np.float32)
        except (TypeError, ValueError):
            kept = np.zeros(0)
        if kept.ndim != 2 or not len(kept) or kept.shape[1] != model["size"]:
            raise FormatError(f"{where} ({name}): descriptors must be lists of {model['size']}")
        if not np.isfinite(kept).all():
            raise FormatError(f"{where} ({name}): a descriptor is not finite")
        names.append(name)
        descriptors.append(kept)
    return Gallery(tuple(names), tuple(descriptors), dict(model), str(path))


def write_gallery(path: Path, gallery: Gallery) -> Path:
    """Write `gallery` to `path` atomically."""
    document = {
        "format": FORMAT,
        "version": VERSION,
        "descriptor": gallery.model,
        "people": [
            {"name": name, "descriptors": np.round(kept.astype(np.float64), 6).tolist()}
            for name, kept in zip(gallery.names, gallery.descriptors)
        ],
    }
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(document) + "\n")
    return path


def photo_gallery(folder: Path, describe_photo, model: dict) -> Gallery:
    """A gallery from a folder of photos, one per person, named by its file (`alice.jpg`):
    `describe_photo(path)` gives a photo's descriptor, or a FormatError's reason."""
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise FormatError(f"{folder}: no photos (one per person, named alice.jpg, ...)")
    names, descriptors = [], []
    for photo in photos:
        problem = name_problem(photo.stem)
        if problem is not None:
            raise FormatError(f"{photo}: {photo.stem!r} cannot be a person's name: {problem}")
        if photo.stem.lower() in (n.lower() for n in names):
            raise FormatError(f"{photo}: a second photo of {photo.stem!r}")
        names.append(photo.stem)
        descriptors.append(np.asarray(describe_photo(photo), dtype=np.float32)[None])
    return Gallery(tuple(names), tuple(descriptors), dict(model), str(folder))


def merged(model: dict, people: Iterable[tuple[str, np.ndarray]], source: str = "") -> Gallery:
    """One gallery of named descriptors from several inputs: descriptors of one name pooled
    (up to KEPT_PER_PERSON), names in order of first appearance."""
    pooled: dict[str, list[np.ndarray]] = {}
    for name, kept in people:
        pooled.setdefault(name, []).extend(np.atleast_2d(kept))
    return Gallery(
        tuple(pooled),
        tuple(np.array(kept[:KEPT_PER_PERSON], dtype=np.float32) for kept in pooled.values()),
        dict(model),
        source,
    )


def saved_name(stem: str, number: int) -> str:
    """The name --save-people gives a person without one: `<input>_face<K>`, made a valid
    name (rename them in the file)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", f"{stem}_face{number}")[:64]
    return name if name[:1].isalpha() else f"p{name}"[:64]
