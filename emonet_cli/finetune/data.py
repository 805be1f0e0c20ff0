"""The labelled faces `emonet finetune` learns from: label files (the layouts `emonet evaluate`
reads, and FER2013's own CSV), the class names, the train/validation split, and the aligned
crops the model sees, augmented through the published aligner.

Every random draw comes from a stream keyed by (seed, epoch, ...): an epoch's order and its
augmentations depend on nothing else, which makes a resumed run equal an uninterrupted one.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from emonet_cli.constants import INPUT_SIZE
from emonet_cli.errors import EmonetError, FormatError
from emonet_cli.evaluate.affectnet import AFFECTNET_EXPRESSIONS, SCORED_EXPRESSIONS
from emonet_cli.evaluate.labels import LAYOUT_AFFECTNET, LabelRow, Sample, csv_rows, read_label_file
from emonet_cli.evaluate.scoring import face_matrix
from emonet_cli.faces.align import crop_face
from emonet_cli.formats.fileio import unreadable_reason
from emonet_cli.media.images import UnreadableImage, read_image

T = TypeVar("T")

LAYOUT_FER2013 = "fer2013"
FER2013_CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
FER2013_SIDE = 48
FER2013_USAGES = {"training": "train", "publictest": "val", "privatetest": "test"}
# AffectNet's classes by default: the 8 the published model has (ids 8-10 are not emotions).
AFFECTNET_CLASSES = tuple(AFFECTNET_EXPRESSIONS[i] for i in SCORED_EXPRESSIONS[8])
SKIP_NOT_A_CLASS = "not one of the classes"
SKIP_TEST_SPLIT = "FER2013 PrivateTest (held out)"

# Independent random streams, each keyed by (seed, epoch, ...) with its own tag.
SPLIT_STREAM, ORDER_STREAM, AUGMENT_STREAM = 1, 2, 3
BALANCE_CHOICES = ("none", "sample", "weight")


@dataclass(frozen=True)
class Example(Sample):
    """A labelled face: its label-file row, its class and, for FER2013, its pixels (HxW gray
    or HxWx3 RGB) and split."""

    pixels: np.ndarray | None = field(default=None, compare=False, repr=False)
    usage: str = "train"  # "train", "val" or "test" (FER2013's Usage column)


@dataclass
class LabelledFaces:
    """The faces of one label file, the class names, and the rows left out, by reason."""

    path: Path
    layout: str
    class_names: tuple[str, ...]
    examples: list[Example]
    rows: int
    skipped: Counter = field(default_factory=Counter)

    @property
    def has_affect(self) -> bool:
        return any(e.row.valence is not None for e in self.examples)


def read_faces(path: str | os.PathLike, class_names: Sequence[str] | None = None) -> LabelledFaces:
    """The faces of a label file. Class names: `class_names`, else FER2013's or AffectNet's
    (its 8 emotions) by the layout, else class0, class1, ... up to the highest id. Expression
    id i is class i; AffectNet rows beyond the classes are skipped and counted, other files'
    are an error naming the line."""
    path = Path(path)
    if is_fer2013(path):
        return read_fer2013(path, class_names)
    limit = len(class_names) if class_names else None
    found = read_label_file(path, limit)
    if found.layout == LAYOUT_AFFECTNET:
        names = tuple(class_names or AFFECTNET_CLASSES)
    else:
        highest = max((row.expression for row in found.rows), default=1)
        names = tuple(class_names or (f"class{i}" for i in range(max(highest + 1, 2))))
    faces = LabelledFaces(path, found.layout, names, [], len(found.rows))
    for row in found.rows:
        if row.expression < len(names):
            faces.examples.append(Example(row, row.expression))
        else:
            faces.skipped[SKIP_NOT_A_CLASS] += 1
    return faces


def is_fer2013(path: Path) -> bool:
    """Whether the first line of `path` is a FER2013 header (a `pixels` column)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False  # read_label_file says what is wrong
    return "pixels" in (name.strip().lower() for name in first)


def read_fer2013(path: Path, class_names: Sequence[str] | None = None) -> LabelledFaces:
    """FER2013's CSV: `emotion,pixels[,Usage]`, 48x48 grayscale faces as 2304 numbers 0-255;
    emotion 0-6 Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral; Usage Training,
    PublicTest (the validation split) or PrivateTest (held out)."""
    names = tuple(class_names or FER2013_CLASSES)
    faces = LabelledFaces(path, LAYOUT_FER2013, names, [], 0)
    rows = csv_rows(path)
    line, header = next(rows, (1, []))
    header = [name.strip().lower() for name in header]
    if "emotion" not in header:
        raise FormatError(f"{path}, line {line}: FER2013 header without an emotion column")
    column = {name: header.index(name) for name in ("emotion", "pixels", "usage") if name in header}
    for line, fields in rows:
        where = f"{path}, line {line}"
        if len(fields) != len(header):
            raise FormatError(f"{where}: expected {len(header)} columns, found {len(fields)}")
        faces.rows += 1
        example = fer2013_example(fields, column, line, where, len(names))
        if example.usage == "test":
            faces.skipped[SKIP_TEST_SPLIT] += 1
        else:
            faces.examples.append(example)
    return faces


def fer2013_example(fields: list[str], column: dict, line: int, where: str, nclass: int) -> Example:
    text = fields[column["emotion"]].strip()
    if not text.isdigit() or int(text) >= nclass:
        raise FormatError(
            f"{where}: emotion {text!r} is not one of the {nclass} classes (0-{nclass - 1})"
        )
    try:  # 5 times as fast as split(); text that is not all numbers gives fewer values
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            values = np.fromstring(fields[column["pixels"]], dtype=np.int64, sep=" ")
    except ValueError:
        values = np.zeros(0, dtype=np.int64)
    if values.size != FER2013_SIDE**2 or values.min() < 0 or values.max() > 255:
        found = f"{values.size} numbers" if values.size else "none"
        if values.size == FER2013_SIDE**2:
            found = f"values {values.min()} to {values.max()}"
        raise FormatError(
            f"{where}: pixels must be {FER2013_SIDE**2} numbers 0-255 (a {FER2013_SIDE}x"
            f"{FER2013_SIDE} face), found {found}"
        )
    usage = "train"
    if "usage" in column:
        usage = FER2013_USAGES.get(fields[column["usage"]].strip().lower(), "")
        if not usage:
            raise FormatError(
                f"{where}: Usage {fields[column['usage']]!r} is not Training, PublicTest or "
                "PrivateTest"
            )
    row = LabelRow(
        line=line, image=f"line {line}", expression=int(text), valence=None, arousal=None
    )
    pixels = values.astype(np.uint8).reshape(FER2013_SIDE, FER2013_SIDE)
    return Example(row, int(text), pixels=pixels, usage=usage)


def check_images(faces: LabelledFaces, images_root: Path | None) -> None:
    """Every image of `faces` exists and is a regular file, else an EmonetError naming the
    first missing one (images are decoded only when used)."""
    named = [e for e in faces.examples if e.pixels is None]
    if not named:
        return
    if images_root is None:
        raise EmonetError(f"{faces.path} names image files: give --images, the folder they are in")
    missing = [
        (e, reason) for e in named if (reason := unreadable_reason(images_root / e.row.image))
    ]
    if missing:
        example, reason = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise EmonetError(
            f"{faces.path}, line {example.row.line}: {images_root / example.row.image}: "
            f"{reason}{more}"
        )


def split(
    faces: LabelledFaces, val_fraction: float | None, seed: int
) -> tuple[list[Example], list[Example]]:
    """(train, validation), each in file order. FER2013 splits by its Usage column unless a
    fraction is given; otherwise `val_fraction` of each class goes to validation (rounded,
    at least one face of each class staying in training), drawn with `seed`."""
    examples = faces.examples
    if (
        val_fraction is None
        and faces.layout == LAYOUT_FER2013
        and any(e.usage == "val" for e in examples)
    ):
        return [e for e in examples if e.usage == "train"], [
            e for e in examples if e.usage == "val"
        ]
    fraction = 0.1 if val_fraction is None else val_fraction
    rng = np.random.default_rng([seed, SPLIT_STREAM])
    targets = np.array([e.target for e in examples])
    chosen = []
    for c in range(len(faces.class_names)):
        members = np.flatnonzero(targets == c)
        count = min(round(fraction * len(members)), max(len(members) - 1, 0))
        chosen.extend(rng.permutation(members)[:count].tolist())
    is_val = np.zeros(len(examples), dtype=bool)
    is_val[chosen] = True
    return [e for e, v in zip(examples, is_val) if not v], [
        e for e, v in zip(examples, is_val) if v
    ]


# --- crops ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    """Random changes to each training crop (the documented defaults): a horizontal flip;
    the face box rotated, scaled and shifted through the aligner; brightness and contrast."""

    flip: float = 0.5  # probability
    rotation: float = 10.0  # degrees, either way
    scale: float = 0.1  # the box 10% larger or smaller at most
    shift: float = 0.05  # of the crop side, in x and in y
    brightness: float = 0.1  # of the full range, added
    contrast: float = 0.2  # around the crop's mean, multiplied by 1 +- this

    def matrix(
        self, matrix: np.ndarray, rng: np.random.Generator, size: int = INPUT_SIZE
    ) -> np.ndarray:
        """The aligner's 2x3 `matrix` followed by a random similarity about the crop's centre
        and, with probability `flip`, a mirror."""
        angle = rng.uniform(-self.rotation, self.rotation)
        scale = 1.0 + rng.uniform(-self.scale, self.scale)
        shift = rng.uniform(-self.shift, self.shift, 2) * size
        centre = ((size - 1) / 2.0, (size - 1) / 2.0)
        jitter = np.vstack([cv2.getRotationMatrix2D(centre, angle, scale), [0.0, 0.0, 1.0]])
        jitter[:2, 2] += shift
        if rng.random() < self.flip:
            jitter = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ jitter
        return (jitter @ np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]

    def colors(self, crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        contrast = 1.0 + rng.uniform(-self.contrast, self.contrast)
        brightness = rng.uniform(-self.brightness, self.brightness) * 255.0
        values = crop.astype(np.float32)
        values = (values - values.mean()) * contrast + values.mean() + brightness
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)


class CropLoader:
    """Aligned 256x256 RGB crops of examples (augmented or not), read in a thread pool so
    that the next batch is ready while the model works on the current one."""

    def __init__(
        self,
        examples: Sequence[Example],
        images_root: Path | None,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        workers: int = 4,
    ):
        self.examples = examples
        self.images_root = images_root
        self.augmentation = augmentation
        self.seed = seed
        self.workers = workers

    def image(self, index: int) -> np.ndarray:
        """The example's whole image as HxWx3 uint8 RGB."""
        example = self.examples[index]
        if example.pixels is not None:
            pixels = example.pixels
            return np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels
        try:
            return read_image(self.images_root / example.row.image)
        except UnreadableImage as exc:
            raise EmonetError(f"line {example.row.line} of the labels: {exc}") from None

    def crop(self, index: int, epoch: int | None = None, position: int = 0) -> np.ndarray:
        """The crop of example `index`; augmented (at `position` of `epoch`'s order) when
        there is an augmentation and an epoch."""
        image = self.image(index)
        matrix = face_matrix(image, self.examples[index].row.box)
        if self.augmentation is None or epoch is None:
            return crop_face(image, matrix)
        rng = np.random.default_rng([self.seed, epoch, position, AUGMENT_STREAM])
        crop = crop_face(image, self.augmentation.matrix(matrix, rng))
        return self.augmentation.colors(crop, rng)

    def batches(
        self, batches: Sequence[np.ndarray], epoch: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(indices, crops) for each batch of example indices; positions count through the
        whole sequence of batches."""
        for indices, crops in read_ahead(self.crop, batches, epoch, self.workers):
            yield indices, np.stack(crops)


def read_ahead(
    read: Callable[[int, int | None, int], T],
    batches: Sequence[np.ndarray],
    epoch: int | None,
    workers: int,
) -> Iterator[tuple[np.ndarray, list[T]]]:
    """(indices, [read(index, epoch, position) ...]) for each batch of indices, read in a
    pool of `workers` threads with the next batch under way while the caller works on this
    one; positions count through the whole sequence of batches."""
    offsets = np.cumsum([0] + [len(b) for b in batches])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = []
        for number, indices in enumerate(batches):
            positions = range(offsets[number], offsets[number + 1])
            futures = [pool.submit(read, int(i), epoch, p) for i, p in zip(indices, positions)]
            pending.append((indices, futures))
            if len(pending) > 1:  # one batch being read ahead
                done, futures = pending.pop(0)
                yield done, [f.result() for f in futures]
        for done, futures in pending:
            yield done, [f.result() for f in futures]


def epoch_order(
    targets: np.ndarray, nclass: int, seed: int, epoch: int, balance: str = "none"
) -> np.ndarray:
    """The example indices of one epoch: a permutation, or with `balance` "sample" as many
    draws with replacement, each class equally likely."""
    rng = np.random.default_rng([seed, epoch, ORDER_STREAM])
    if balance != "sample":
        return rng.permutation(len(targets))
    counts = np.bincount(targets, minlength=nclass)
    weights = 1.0 / counts[targets]
    return rng.choice(len(targets), size=len(targets), replace=True, p=weights / weights.sum())


def batch_indices(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """`order` cut into batches; a last batch of one face joins the one before (batch norm
    needs two faces to train)."""
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [np.concatenate(batches[-2:])]
    return batches


def class_weights(targets: np.ndarray, nclass: int) -> np.ndarray:
    """Loss weights n / (k n_c) that give every class of the training set the same total
    weight (a class without faces gets 0)."""
    counts = np.bincount(targets, minlength=nclass).astype(np.float64)
    present = counts > 0
    weights = np.zeros(nclass)
    weights[present] = len(targets) / (present.sum() * counts[present])
    return weights
