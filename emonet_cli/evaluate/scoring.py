"""`emonet evaluate`: score a model on labelled faces the way the EmoNet paper scores AffectNet.

Data flow: label file -> rows -> class mapping and cleaning -> image -> aligned crop (and its
mirror) -> batched model -> metrics -> table and JSON report.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emonet_cli.constants import Classes
from emonet_cli.errors import EmonetError
from emonet_cli.evaluate import metrics
from emonet_cli.evaluate.affectnet import AFFECTNET_EXPRESSIONS, FIVE_CLASS_NOTE, class_names
from emonet_cli.evaluate.labels import (
    SKIP_REASONS,
    SKIP_UNREADABLE,
    Box,
    LabelRow,
    Sample,
    Selection,
    describe_counts,
    select_rows,
)
from emonet_cli.evaluate.skipped import OFF_IMAGE, nothing_scored
from emonet_cli.faces.align import PUBLISHED_CROP, FaceCrop, crop_face
from emonet_cli.faces.on_frame import off_frame
from emonet_cli.media.images import UnreadableImage, read_image
from emonet_cli.models.emonet.inference import Predictor
from emonet_cli.models.registry import DEFAULT_FAMILY, family

# The paper's results on the cleaned AffectNet test set, shown next to the user's.
PUBLISHED = {
    8: {
        "expression": {"acc": 0.75},
        "valence": {"ccc": 0.82, "pcc": 0.82, "rmse": 0.29, "sagr": 0.84},
        "arousal": {"ccc": 0.75, "pcc": 0.75, "rmse": 0.27, "sagr": 0.80},
    },
    5: {
        "expression": {"acc": 0.82},
        "valence": {"ccc": 0.90, "pcc": 0.90, "rmse": 0.24, "sagr": 0.85},
        "arousal": {"ccc": 0.80, "pcc": 0.80, "rmse": 0.24, "sagr": 0.79},
    },
}


# --- images -------------------------------------------------------------------------------------


def face_crop(image: np.ndarray, box: Box | None, crop: FaceCrop = PUBLISHED_CROP) -> np.ndarray:
    """The network input: the box through the model family's aligner (the published one by
    default), or the whole image resized when there is no box."""
    return crop_face(image, face_matrix(image, box, crop), crop.size)


def face_matrix(image: np.ndarray, box: Box | None, crop: FaceCrop = PUBLISHED_CROP) -> np.ndarray:
    """The aligner's matrix of face_crop."""
    height, width = image.shape[:2]
    return crop.whole_frame(width, height) if box is None else crop.matrix(box)


def load_crop(path: Path, box: Box | None, crop: FaceCrop) -> np.ndarray | UnreadableImage:
    """The face crop of an image, or the error that says why the image cannot be read or why
    its box gives no face (one wholly outside the image, as for every family)."""
    try:
        image = read_image(path)
    except UnreadableImage as exc:
        return exc
    if box is not None and off_frame(box, image.shape[1], image.shape[0])[0]:
        return UnreadableImage(path, OFF_IMAGE)
    return face_crop(image, box, crop)


def loaded_batches(
    samples: Sequence[Sample],
    images_root: Path,
    batch_size: int,
    pool: ThreadPoolExecutor,
    crop: FaceCrop = PUBLISHED_CROP,
) -> Iterator[list[tuple[Sample, np.ndarray | UnreadableImage]]]:
    """Batches of (sample, crop or the reason it is missing); the next batch is read in the
    pool while the caller runs the model on the current one."""
    pending: tuple[Sequence[Sample], list[Future]] | None = None
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        futures = [
            pool.submit(load_crop, images_root / s.row.image, s.row.box, crop) for s in batch
        ]
        if pending is not None:
            yield [(s, f.result()) for s, f in zip(*pending)]
        pending = (batch, futures)
    if pending is not None:
        yield [(s, f.result()) for s, f in zip(*pending)]


# --- the evaluation -----------------------------------------------------------------------------


@dataclass
class SkippedImage:
    """An image that could not be read, and why (the reason without the path)."""

    line: int
    path: str
    reason: str


@dataclass
class Evaluation:
    """Labels and predictions of every scored face, and what was skipped on the way."""

    nclass: int
    flip: bool
    cleaned: bool
    device: str
    precision: str
    selection: Selection
    unreadable: list[SkippedImage]
    lines: np.ndarray  # label-file line of each scored face
    true_expression: np.ndarray
    predicted_expression: np.ndarray
    true_valence: np.ndarray
    predicted_valence: np.ndarray
    true_arousal: np.ndarray
    predicted_arousal: np.ndarray
    classes: Classes | None = None  # None: the published classes of nclass

    @property
    def is_published(self) -> bool:
        """Whether the model's classes are the published ones, scored as the paper did."""
        return self.classes is None or self.classes.labels == "published"

    @property
    def class_names(self) -> list[str]:
        """The published model's classes by the AffectNet label each is scored against (see
        affectnet.class_names), a fine-tuned model's by their own names."""
        return class_names(self.nclass) if self.is_published else list(self.classes.names)

    @property
    def used(self) -> int:
        return len(self.lines)

    @property
    def skipped(self) -> dict[str, int]:
        counts = dict(self.selection.skipped)
        counts[SKIP_UNREADABLE] = len(self.unreadable)
        return {reason: counts.get(reason, 0) for reason in SKIP_REASONS}

    def scores(self) -> dict[str, dict[str, float]]:
        """ACC over every scored face; CCC, PCC, RMSE and SAGR over the faces labelled with
        valence and arousal (NaN when none is)."""
        labelled = np.isfinite(self.true_valence) & np.isfinite(self.true_arousal)
        scores = {
            "expression": {"acc": metrics.acc(self.true_expression, self.predicted_expression)}
        }
        for dimension in ("valence", "arousal"):
            truth = getattr(self, f"true_{dimension}")[labelled]
            predicted = getattr(self, f"predicted_{dimension}")[labelled]
            scores[dimension] = (
                metrics.regression_scores(truth, predicted)
                if labelled.any()
                else dict.fromkeys(REGRESSION_SCORES, float("nan"))
            )
        return scores

    def confusion(self) -> np.ndarray:
        return metrics.confusion_matrix(
            self.true_expression, self.predicted_expression, self.nclass
        )


def evaluate(
    rows: Sequence[LabelRow],
    images_root: str | os.PathLike,
    predictor: Predictor,
    *,
    flip: bool = True,
    cleaned: bool = True,
    batch_size: int = 32,
    limit: int | None = None,
    progress: bool = False,
    workers: int = 4,
) -> Evaluation:
    """Run `predictor` over the labelled faces and collect labels and predictions.

    With `flip`, valence and arousal are the mean over the crop and its mirror (both in one
    model batch) and the expression comes from the crop alone. Valence and arousal are clipped
    to [-1, 1]. Unreadable images are skipped and listed. Raises EmonetError when no face is
    left to score. The rows name the model's classes as `predictor.classes.labels` says."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    images_root = Path(images_root)
    classes = getattr(predictor, "classes", None) or Classes.default(predictor.nclass)
    crop = family(getattr(predictor, "family", DEFAULT_FAMILY)).crop
    selection = select_rows(
        rows, predictor.nclass, cleaned=cleaned, limit=limit, labels=classes.labels
    )
    if not selection.samples:
        raise EmonetError(
            f"no face to score: all {selection.rows} label rows were skipped "
            f"({describe_counts(selection.skipped)})"
        )

    scored: list[Sample] = []
    unreadable: list[SkippedImage] = []
    expressions, valences, arousals = [], [], []
    bar = tqdm(total=len(selection.samples), disable=not progress, unit="face", desc="evaluate")
    with ThreadPoolExecutor(max_workers=workers) as pool, bar:
        for batch in loaded_batches(selection.samples, images_root, batch_size, pool, crop):
            readable = []
            for sample, crop in batch:
                if isinstance(crop, UnreadableImage):
                    path = str(images_root / sample.row.image)
                    unreadable.append(SkippedImage(sample.row.line, path, crop.reason))
                else:
                    readable.append((sample, crop))
            if readable:
                crops = np.stack([crop for _, crop in readable])
                count = len(crops)
                if flip:
                    crops = np.concatenate([crops, crops[:, :, ::-1]])
                expression, valence, arousal = scored_outputs(predictor(crops), count, flip)
                scored.extend(sample for sample, _ in readable)
                expressions.append(expression)
                valences.append(valence)
                arousals.append(arousal)
            bar.update(len(batch))

    if not scored:
        raise nothing_scored("face", ((s.line, s.path, s.reason) for s in unreadable))
    return Evaluation(
        nclass=predictor.nclass,
        flip=flip,
        cleaned=cleaned,
        device=str(predictor.device),
        precision=predictor.precision,
        selection=selection,
        unreadable=unreadable,
        **scored_arrays(scored, expressions, valences, arousals),
        classes=classes,
    )


def scored_outputs(out, count: int, flip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted class, valence and arousal of the first `count` faces of a batch of model
    outputs (expression logits, valence, arousal), whose second half mirrors the first with
    `flip`: the class from the face alone, valence and arousal averaged with the mirror's,
    clipped to [-1, 1]."""
    valence, arousal = out.valence[:count], out.arousal[:count]
    if flip:
        valence = (valence + out.valence[count:]) / 2.0
        arousal = (arousal + out.arousal[count:]) / 2.0
    return (
        out.expression[:count].argmax(axis=1),
        np.clip(valence, -1.0, 1.0),
        np.clip(arousal, -1.0, 1.0),
    )


def scored_arrays(
    scored: Sequence[Sample],
    expressions: Sequence[np.ndarray],
    valences: Sequence[np.ndarray],
    arousals: Sequence[np.ndarray],
) -> dict[str, np.ndarray]:
    """Evaluation's label and prediction arrays from the scored samples and the batches of
    scored_outputs; a label without valence or arousal is NaN."""

    def label(value: float | None) -> float:
        return float("nan") if value is None else value

    return {
        "lines": np.array([s.row.line for s in scored]),
        "true_expression": np.array([s.target for s in scored]),
        "predicted_expression": np.concatenate(expressions),
        "true_valence": np.array([label(s.row.valence) for s in scored], dtype=np.float64),
        "predicted_valence": np.concatenate(valences).astype(np.float64),
        "true_arousal": np.array([label(s.row.arousal) for s in scored], dtype=np.float64),
        "predicted_arousal": np.concatenate(arousals).astype(np.float64),
    }


# --- reporting ----------------------------------------------------------------------------------


REGRESSION_SCORES = ("ccc", "pcc", "rmse", "sagr")
LABEL_WIDTH = 24
CELL_WIDTH = 6
GROUP_WIDTH = len(REGRESSION_SCORES) * (CELL_WIDTH + 1) - 1


def format_score(value: float, decimals: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{decimals}f}"


def table_row(label: str, acc: str, valence: list[str], arousal: list[str]) -> str:
    groups = [" ".join(f"{cell:>{CELL_WIDTH}}" for cell in cells) for cells in (valence, arousal)]
    valence_cells, arousal_cells = (f"{group:^{GROUP_WIDTH}}" for group in groups)
    return f"{label:<{LABEL_WIDTH}}{acc:>{CELL_WIDTH}}   {valence_cells}   {arousal_cells}"


def format_table(evaluation: Evaluation) -> str:
    """The paper's table layout (ACC, then CCC, PCC, RMSE, SAGR of valence and arousal) for
    this run and the published model, then per-class recall and the confusion matrix."""
    settings = [
        "flip" if evaluation.flip else "no flip",
        "cleaned" if evaluation.cleaned else "all rows",
        evaluation.precision,
    ]
    headers = [name.upper() for name in REGRESSION_SCORES]
    rows = [("this run", evaluation.scores(), 3)]
    if evaluation.is_published:
        rows.append(("paper (AffectNet test)", PUBLISHED[evaluation.nclass], 2))
    lines = [
        f"EmoNet, {evaluation.nclass} classes: {evaluation.used} faces scored of "
        f"{evaluation.selection.rows} label rows ({', '.join(settings)})",
        f"skipped: {describe_counts(evaluation.skipped)}",
        "",
        table_row("", "", ["Valence"], ["Arousal"]),
        table_row("", "ACC", headers, headers),
    ]
    for label, scores, decimals in rows:
        acc = format_score(scores["expression"]["acc"], decimals)
        valence, arousal = (
            [format_score(scores[dimension][name], decimals) for name in REGRESSION_SCORES]
            for dimension in ("valence", "arousal")
        )
        lines.append(table_row(label, acc, valence, arousal))

    names = evaluation.class_names
    confusion = evaluation.confusion()
    recall = metrics.per_class_recall(confusion)
    width = max(len(name) for name in names) + 2
    lines += ["", "per-class recall and confusion matrix (rows: label, columns: prediction)"]
    lines.append(f"{'':<{width}}{'recall':>7}{'n':>7}  " + "".join(f"{n:>{width}}" for n in names))
    for name, class_recall, row in zip(names, recall, confusion):
        lines.append(
            f"{name:<{width}}{format_score(class_recall, 3):>7}{row.sum():>7}  "
            + "".join(f"{count:>{width}}" for count in row)
        )
    if evaluation.nclass == 5 and evaluation.is_published:
        lines += ["", f"note: {FIVE_CLASS_NOTE}"]
    return "\n".join(line.rstrip() for line in lines)


def label_name(expression: int, evaluation: Evaluation) -> str:
    """An expression id of the label file in words: its AffectNet name, or the id itself in
    a file of a lab's own classes."""
    if evaluation.classes is not None and evaluation.classes.labels == "index":
        return str(expression)
    return AFFECTNET_EXPRESSIONS[expression]


def evaluation_report(
    evaluation: Evaluation,
    *,
    labels: str | os.PathLike,
    images_root: str | os.PathLike,
    weights_path: str | os.PathLike | None = None,
    weights_sha256: str | None = None,
) -> dict:
    """The report for `writers.write_json`: settings, counts, scores, confusion matrix and
    per-class recall; undefined scores are NaN, which write_json writes as null."""
    names = evaluation.class_names
    confusion = evaluation.confusion()
    recall = metrics.per_class_recall(confusion)
    selection = evaluation.selection
    report = {
        "labels": str(labels),
        "images": str(images_root),
        "nclass": evaluation.nclass,
        "class_names": names,
        "weights": {
            "path": None if weights_path is None else str(weights_path),
            "sha256": weights_sha256,
        },
        "device": evaluation.device,
        "precision": evaluation.precision,
        "flip": evaluation.flip,
        "cleaned": evaluation.cleaned,
        "counts": {
            "rows": selection.rows,
            "used": evaluation.used,
            "skipped": evaluation.skipped,
            "skipped_expressions": {
                label_name(i, evaluation): n
                for i, n in sorted(selection.skipped_expressions.items())
            },
            "cleaned_out": {
                AFFECTNET_EXPRESSIONS[i]: n for i, n in sorted(selection.cleaned_out.items())
            },
            "unreadable_images": [asdict(item) for item in evaluation.unreadable],
        },
        "metrics": evaluation.scores(),
        "confusion_matrix": {
            "rows": "label",
            "columns": "prediction",
            "classes": names,
            "counts": confusion.tolist(),
        },
        "per_class_recall": {name: float(r) for name, r in zip(names, recall)},
        "published": PUBLISHED[evaluation.nclass] if evaluation.is_published else None,
    }
    if evaluation.nclass == 5 and evaluation.is_published:
        report["note"] = FIVE_CLASS_NOTE
    return report
