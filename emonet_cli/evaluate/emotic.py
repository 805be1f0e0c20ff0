"""`emonet evaluate --model emotic`: EMOTIC's own metrics on a user's labelled people, as the
reference's test.py reports them: average precision of each of the 26 categories, their mean,
and the mean absolute error of valence, arousal and dominance on EMOTIC's 1-10 scale.

Data flow: label file -> rows -> image -> person inputs (PersonCrop) -> batched model ->
metrics -> table and JSON report.

The label file is a CSV with a header: `image,x1,y1,x2,y2,categories,valence,arousal,
dominance`. `categories` names the categories that hold, separated by `;` (as our results CSV
writes them; names or their file-name spellings, any case); valence, arousal and dominance are
on the 1-10 scale and may all be empty (the row then counts for the categories only).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emonet_cli.errors import FormatError
from emonet_cli.evaluate.skipped import OFF_IMAGE, nothing_scored
from emonet_cli.faces.face import FrameFace
from emonet_cli.formats.fileio import atomic_open, remove_partial_files
from emonet_cli.media.frames import Frame
from emonet_cli.media.images import UnreadableImage, read_image
from emonet_cli.models.emotic.metrics import (
    CATEGORIES,
    mean_average_precision,
    vad_mean_absolute_error,
)
from emonet_cli.models.emotic.preprocess import (
    EMOTIC_VAD_MAX,
    EMOTIC_VAD_MIN,
    PERSON_CROP,
    signed_to_emotic,
)
from emonet_cli.models.predictions import Predictor
from emonet_cli.outputs.results import CATEGORY_SEPARATOR, DIMENSIONS, category_slug

COLUMNS = ("image", "x1", "y1", "x2", "y2", "categories", *DIMENSIONS)
BY_NAME = {
    **{name.lower(): k for k, name in enumerate(CATEGORIES)},
    **{category_slug(name): k for k, name in enumerate(CATEGORIES)},
}


@dataclass(frozen=True)
class PersonLabel:
    """One labelled person: the box (x1, y1, x2, y2) in image pixels, the categories that
    hold (26 booleans in CATEGORIES order) and valence, arousal, dominance (1-10) or None."""

    line: int
    image: str
    box: tuple[float, float, float, float]
    categories: tuple[bool, ...]
    vad: tuple[float, float, float] | None


def read_person_labels(path: str | Path) -> list[PersonLabel]:
    """Every row of an EMOTIC label file; FormatError naming the file and line of a bad row."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not UTF-8 text") from None
    if not lines or [name.strip().lower() for name in lines[0]] != list(COLUMNS):
        raise FormatError(
            f"{path}: an EMOTIC label file starts with the header {','.join(COLUMNS)}"
        )
    rows = [
        _parse_row(fields, number, f"{path}:{number}")
        for number, fields in enumerate(lines[1:], start=2)
        if any(field.strip() for field in fields)
    ]
    if not rows:
        raise FormatError(f"{path}: no labelled person")
    return rows


def _parse_row(fields: list[str], line: int, where: str) -> PersonLabel:
    if len(fields) != len(COLUMNS):
        raise FormatError(f"{where}: {len(fields)} fields, expected {len(COLUMNS)}")
    image, *box_text = (field.strip() for field in fields[:5])
    if not image:
        raise FormatError(f"{where}: no image")
    try:
        box = tuple(float(v) for v in box_text)
    except ValueError:
        raise FormatError(f"{where}: the box {' '.join(box_text)} is not four numbers") from None
    if not all(math.isfinite(v) for v in box) or box[2] <= box[0] or box[3] <= box[1]:
        raise FormatError(f"{where}: the box {box} is not x1 < x2, y1 < y2")
    held = [False] * len(CATEGORIES)
    for name in filter(None, (n.strip() for n in fields[5].split(CATEGORY_SEPARATOR))):
        index = BY_NAME.get(name.lower(), BY_NAME.get(category_slug(name)))
        if index is None:
            raise FormatError(f"{where}: {name!r} is no EMOTIC category")
        held[index] = True
    return PersonLabel(line, image, box, tuple(held), _vad(fields[6:], where))


def _vad(texts: Sequence[str], where: str) -> tuple[float, float, float] | None:
    texts = [text.strip() for text in texts]
    if not any(texts):
        return None
    try:
        values = tuple(float(text) for text in texts)
    except ValueError:
        raise FormatError(
            f"{where}: valence, arousal, dominance must be numbers or empty"
        ) from None
    if not all(EMOTIC_VAD_MIN <= v <= EMOTIC_VAD_MAX for v in values):
        raise FormatError(
            f"{where}: valence, arousal and dominance lie on EMOTIC's scale, "
            f"{EMOTIC_VAD_MIN:g} to {EMOTIC_VAD_MAX:g}: {values}"
        )
    return values


@dataclass
class PersonEvaluation:
    """Labels and predictions of every scored person, and the images that could not be read."""

    labels: list[PersonLabel]
    scores: np.ndarray  # (n, 26) raw category scores
    vad: np.ndarray  # (n, 3) predicted, 1-10
    unreadable: list[tuple[int, str, str]]  # line, image, reason
    device: str
    precision: str

    def category_labels(self) -> np.ndarray:
        return np.array([row.categories for row in self.labels], dtype=np.int64)

    def average_precisions(self) -> tuple[np.ndarray, float]:
        return mean_average_precision(self.category_labels(), self.scores)

    def vad_errors(self) -> tuple[np.ndarray, float, int]:
        """Per-dimension MAE, their mean, over the rows with VAD labels (NaN without any)."""
        rows = [k for k, row in enumerate(self.labels) if row.vad is not None]
        if not rows:
            return np.full(3, np.nan), math.nan, 0
        truth = np.array([self.labels[k].vad for k in rows])
        per_dimension, mean = vad_mean_absolute_error(self.vad[rows], truth)
        return per_dimension, mean, len(rows)


def evaluate_people(
    rows: Sequence[PersonLabel],
    images_root: Path,
    predictor: Predictor,
    batch_size: int = 32,
    limit: int | None = None,
    progress: bool = False,
) -> PersonEvaluation:
    """EMOTIC's predictions for each labelled person (the first `limit`); unreadable images
    are skipped and listed."""
    rows = list(rows[:limit] if limit else rows)
    scored: list[PersonLabel] = []
    scores, vad, unreadable = [], [], []
    pending: list[tuple[PersonLabel, object]] = []

    def run() -> None:
        out = predictor(PERSON_CROP.stack([cut for _, cut in pending]))
        signed = np.column_stack([out.valence, out.arousal, out.dominance])
        scored.extend(row for row, _ in pending)
        scores.append(out.categories)
        vad.append(signed_to_emotic(signed))
        pending.clear()

    for row in tqdm(rows, disable=not progress, unit="person"):
        try:
            image = read_image(images_root / row.image)
        except UnreadableImage as exc:
            unreadable.append((row.line, row.image, exc.reason))
            continue
        cut = PERSON_CROP.cut(Frame(0, 0.0, image), FrameFace(np.array(row.box), 1.0))
        if cut is None:
            unreadable.append((row.line, row.image, OFF_IMAGE))
            continue
        pending.append((row, cut[0]))
        if len(pending) == batch_size:
            run()
    if pending:
        run()
    if not scored:
        raise nothing_scored("labelled person", unreadable)
    return PersonEvaluation(
        scored,
        np.concatenate(scores).astype(np.float64),
        np.concatenate(vad),
        unreadable,
        str(predictor.device),
        predictor.precision,
    )


def format_people_table(evaluation: PersonEvaluation) -> str:
    """The category APs, their mean and the VAD errors, as the terminal shows them."""
    per_category, mean_ap = evaluation.average_precisions()
    positives = evaluation.category_labels().sum(axis=0)
    lines = [
        f"EMOTIC on {len(evaluation.labels)} people ({evaluation.device}, {evaluation.precision})",
        f"{'category':<16} {'AP':>6} {'people':>7}",
    ]
    for name, ap, count in zip(CATEGORIES, per_category, positives):
        lines.append(f"{name:<16} {ap:6.4f} {int(count):7d}")
    lines.append(f"{'mean AP':<16} {mean_ap:6.4f}")
    per_dimension, mean_error, counted = evaluation.vad_errors()
    if counted:
        errors = ", ".join(f"{d} {e:.4f}" for d, e in zip(DIMENSIONS, per_dimension))
        lines.append(f"VAD MAE (1-10, {counted} people): {errors}; mean {mean_error:.4f}")
    else:
        lines.append("VAD MAE: no person has valence, arousal and dominance labels")
    return "\n".join(lines)


def people_report(evaluation: PersonEvaluation, **provenance) -> dict:
    """The JSON report: what was scored, every AP, the VAD errors and the skipped images."""
    per_category, mean_ap = evaluation.average_precisions()
    per_dimension, mean_error, counted = evaluation.vad_errors()
    return {
        **{key: str(value) for key, value in provenance.items()},
        "model": "emotic",
        "device": evaluation.device,
        "precision": evaluation.precision,
        "people": len(evaluation.labels),
        "average_precision": dict(zip(CATEGORIES, map(float, per_category))),
        "mean_average_precision": mean_ap,
        "vad_people": counted,
        "vad_mean_absolute_error": {
            **dict(zip(DIMENSIONS, map(float, per_dimension))),
            "mean": mean_error,
        },
        "unreadable": [
            {"line": line, "image": image, "reason": reason}
            for line, image, reason in evaluation.unreadable
        ],
    }


def write_person_scores(path: Path, evaluation: PersonEvaluation) -> Path:
    """Each scored person's number, image, box, 0/1 labels, raw category scores (every digit)
    and VAD (1-10), written atomically."""
    remove_partial_files(path)
    slugs = [category_slug(name) for name in CATEGORIES]
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["person", "image", "x1", "y1", "x2", "y2",
                         *(f"label_{s}" for s in slugs), *(f"score_{s}" for s in slugs),
                         *DIMENSIONS])  # fmt: skip
        for person, scores, vad in zip(evaluation.labels, evaluation.scores, evaluation.vad):
            writer.writerow([person.line, person.image, *(f"{v:g}" for v in person.box),
                             *(int(v) for v in person.categories),
                             *(repr(float(v)) for v in scores),
                             *(repr(float(v)) for v in vad)])  # fmt: skip
    return path
