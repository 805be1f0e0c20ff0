"""EMOTIC's `Annotations/Annotations.mat` as the dataset ships it, read into labelled people
(`evaluate.emotic.PersonLabel`), with scipy's MATLAB reader (the `emotic` extra; no torch).

The file holds one struct array per split, `train`, `val` and `test`, one element per image:
`filename`, `folder` (relative to the dataset's image root: mscoco/..., framesdb/...,
emodb_small/..., ade20k/...), `image_size` (`n_col`, `n_row`) and `person`, a struct array
with, per person, `body_bbox` (x1 y1 x2 y2 in pixels) and the labels:
  - train: `annotations_categories.categories` (a cell of category names) and
    `annotations_continuous` (`valence`, `arousal`, `dominance`, 1-10), one annotator;
  - val and test: one entry per annotator in `annotations_categories` and
    `annotations_continuous`, and the combined labels `combined_categories` (a cell of
    names) and `combined_continuous`, which are the ones used, as the reference does.

People are kept as Tandon's re-implementation (mat2py.py) keeps them: the box clipped to the
image size and truncated to whole pixels; a person without category annotators, without
continuous annotators, or with a missing (NaN) valence, arousal or dominance is left out, and
so is a box that holds no pixel. `PersonLabel.line` is the person's number in the split,
counted from 1 over the people of the file (left-out ones included), for messages.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emonet_cli.errors import FormatError
from emonet_cli.evaluate.emotic import PersonLabel
from emonet_cli.models.emotic.metrics import CATEGORIES

SPLITS = ("train", "val", "test")
IMAGE_FIELDS = ("filename", "folder", "person")
INDEX = {name: k for k, name in enumerate(CATEGORIES)}
VAD_FIELDS = ("valence", "arousal", "dominance")
MAT_SIGNATURE = b"MATLAB"  # the text header of every MATLAB .mat file


@dataclass
class EmoticSplit:
    """The labelled people of one split, and how many were left out, by reason."""

    path: Path
    split: str
    people: list[PersonLabel]
    images: int
    left_out: Counter = field(default_factory=Counter)


def is_mat_file(path: str | os.PathLike) -> bool:
    """Whether `path` names a MATLAB file: by its `.mat` suffix or its header."""
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return True
    try:
        with open(path, "rb") as f:
            return f.read(len(MAT_SIGNATURE)) == MAT_SIGNATURE
    except OSError:
        return False


def load_mat(path: Path) -> dict:
    """The variables of a .mat file; every failure (no scipy, damaged, foreign, MATLAB v7.3)
    is one FormatError naming the file."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise FormatError(
            f"{path}: reading EMOTIC's Annotations.mat needs scipy "
            "(pip install 'emonet-cli[emotic]')"
        ) from None
    try:
        return loadmat(path, squeeze_me=False, struct_as_record=True)
    except NotImplementedError:  # v7.3 files are HDF5
        raise FormatError(
            f"{path}: a MATLAB v7.3 (HDF5) file; EMOTIC's Annotations.mat is a v5 file"
        ) from None
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError... for bad files
        detail = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else ""
        raise FormatError(
            f"{path} is not a readable MATLAB file, or it is truncated or damaged "
            f"({type(exc).__name__}{': ' + detail if detail else ''})"
        ) from None


def read_annotations(path: str | os.PathLike, split: str) -> EmoticSplit:
    """The people of `split` (train, val or test) in EMOTIC's Annotations.mat."""
    path = Path(path)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    variables = load_mat(path)
    images = variables.get(split)
    held = sorted(k for k in variables if not k.startswith("__"))
    if images is None:
        raise FormatError(
            f"{path} is not EMOTIC's Annotations.mat: no {split!r} split "
            f"(it holds {', '.join(held) or 'no variables'})"
        )
    try:
        image_records = records(images)  # a struct array, or a cell of structs
    except TypeError:
        image_records = []
    names = set.intersection(*(set(r.dtype.names) for r in image_records)) if image_records else ()
    absent = [name for name in IMAGE_FIELDS if name not in names]
    if absent:
        raise FormatError(
            f"{path} is not EMOTIC's Annotations.mat: its {split!r} is not a struct array "
            f"of images with {', '.join(IMAGE_FIELDS)} (lacks {', '.join(absent)})"
        )
    result = EmoticSplit(path, split, [], len(image_records))
    number = 0
    for index, image in enumerate(image_records, start=1):
        where = f"{path}: {split} image {index}"
        try:
            relative = f"{text(image['folder'])}/{text(image['filename'])}"
            size = image_size(image)
            people = records(image["person"])
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise FormatError(f"{where} is not in EMOTIC's layout ({exc})") from None
        for person in people:
            number += 1
            try:
                label = read_person(person, number, relative, size, where)
            except (ValueError, TypeError, IndexError, KeyError) as exc:
                raise FormatError(
                    f"{where}, person {number}: not in EMOTIC's layout ({exc})"
                ) from None
            if isinstance(label, str):
                result.left_out[label] += 1
            else:
                result.people.append(label)
    return result


def read_person(
    person: np.void, number: int, image: str, size: tuple[float, float] | None, where: str
) -> PersonLabel | str:
    """One person's label, or the reason the reference leaves it out."""
    fields = person.dtype.names
    combined = "combined_categories" in fields
    if combined:
        if not records(person["annotations_categories"]):
            return "no category annotator"
        if not records(person["annotations_continuous"]):
            return "no continuous annotator"
        names = strings(person["combined_categories"])
        continuous = records(person["combined_continuous"])
    else:
        names = [
            name
            for entry in records(person["annotations_categories"])[:1]
            for name in strings(entry["categories"])
        ]
        continuous = records(person["annotations_continuous"])
    if not continuous:
        return "no continuous annotator"
    vad = tuple(number_of(continuous[0][name]) for name in VAD_FIELDS)
    if not all(math.isfinite(v) for v in vad):
        return "valence, arousal or dominance missing"
    held = [False] * len(CATEGORIES)
    for name in names:
        if name not in INDEX:
            raise FormatError(f"{where}, person {number}: {name!r} is no EMOTIC category")
        held[INDEX[name]] = True
    box = clipped_box(person["body_bbox"], size)
    if box is None:
        return "empty body box"
    return PersonLabel(number, image, box, tuple(held), vad)


def clipped_box(value, size: tuple[float, float] | None) -> tuple[float, ...] | None:
    """x1 y1 x2 y2 clipped to the image (width, height) and truncated to whole pixels, as
    the reference does; None when no pixel is left."""
    box = [float(v) for v in np.asarray(value, dtype=np.float64).ravel()]
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise ValueError(f"body_bbox is not four numbers: {box}")
    if size is not None:
        width, height = size
        box = [min(max(v, 0.0), limit) for v, limit in zip(box, (width, height, width, height))]
    x1, y1, x2, y2 = (float(int(v)) for v in box)
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2, y2)


def image_size(image: np.void) -> tuple[float, float] | None:
    """(width, height) from `image_size` (n_col, n_row), or None when the file lacks it."""
    if "image_size" not in image.dtype.names:
        return None
    entries = records(image["image_size"])
    if not entries:
        return None
    size = entries[0]
    names = size.dtype.names or ()
    if "n_col" in names and "n_row" in names:
        return number_of(size["n_col"]), number_of(size["n_row"])
    return number_of(size[0]), number_of(size[1])  # unnamed: the order of the dataset


def records(value) -> list[np.void]:
    """The elements of a struct array (any shape; empty for []), as records."""
    array = np.asarray(value)
    if array.dtype == object:  # a cell holding the struct array
        flat = [item for item in array.ravel() if np.asarray(item).size]
        return [r for item in flat for r in records(item)]
    if array.dtype.names is None:
        if array.size == 0:
            return []
        raise TypeError(f"expected a struct, got {array.dtype} {array.shape}")
    return list(array.ravel())


def strings(value) -> list[str]:
    """The texts of a cell array of strings (or of one string)."""
    array = np.asarray(value)
    if array.dtype.kind == "U":  # rows of a char matrix come padded with spaces
        return [str(s).strip() for s in array.ravel()] if array.size else []
    if array.dtype == object:
        return [s for item in array.ravel() for s in strings(item)]
    if array.size == 0:
        return []
    raise TypeError(f"expected text, got {array.dtype} {array.shape}")


def text(value) -> str:
    found = strings(value)
    if len(found) != 1:
        raise ValueError(f"expected one text, got {len(found)}")
    return found[0]


def number_of(value) -> float:
    """The one number a MATLAB scalar holds; NaN when empty."""
    array = np.asarray(value)
    if array.dtype == object:
        array = np.asarray(array.ravel()[0]) if array.size == 1 else np.array([])
    if array.size == 0:
        return math.nan
    if array.size != 1 or array.dtype.kind not in "fiub":
        raise TypeError(f"expected a number, got {array.dtype} {array.shape}")
    return float(array.ravel()[0])
