"""What `emonet finetune` reports each epoch: the row of `metrics.csv` (training loss and
accuracy, and the validation scores `emonet evaluate` computes) and the plot of the curves.

No torch here: the rows are plain numbers, written atomically.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from emonet_cli.errors import EmonetError
from emonet_cli.evaluate import metrics
from emonet_cli.formats.fileio import atomic_open, atomic_path, remove_partial_files

REGRESSION = ("ccc", "pcc", "rmse", "sagr")
TRAIN_COLUMNS = ("train_loss", "train_expression_loss", "train_affect_loss", "train_acc")


def metrics_columns(class_names: Sequence[str]) -> list[str]:
    """The columns of metrics.csv, one row per epoch."""
    return [
        "epoch",
        "lr",
        *TRAIN_COLUMNS,
        "val_faces",
        "val_acc",
        *(f"val_recall_{name.lower()}" for name in class_names),
        *(f"val_{dim}_{score}" for dim in ("valence", "arousal") for score in REGRESSION),
        "val_score",
        "best",
        "images_per_s",
        "seconds",
    ]


def validation_scores(evaluation) -> dict[str, float]:
    """The validation columns of an `evaluate.Evaluation`, scored as `emonet evaluate` scores
    (NaN where undefined), and its score for choosing the best epoch: ACC, or the mean of ACC
    and the CCCs of valence and arousal when the validation faces have them."""
    scores = evaluation.scores()
    recall = metrics.per_class_recall(evaluation.confusion())
    row = {"val_faces": evaluation.used, "val_acc": scores["expression"]["acc"]}
    row.update(
        {f"val_recall_{name.lower()}": float(r) for name, r in zip(evaluation.class_names, recall)}
    )
    for dimension in ("valence", "arousal"):
        row.update({f"val_{dimension}_{k}": scores[dimension][k] for k in REGRESSION})
    cccs = [row[f"val_{d}_ccc"] for d in ("valence", "arousal")]
    defined = [value for value in cccs if not math.isnan(value)]
    row["val_score"] = (row["val_acc"] + sum(defined)) / (1 + len(defined))
    return row


def cell(value) -> str:
    """A metrics.csv cell: every digit of a float, empty for NaN or None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return repr(float(value)) if isinstance(value, float) else str(value)


def write_metrics(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> Path:
    """metrics.csv, written whole and atomically."""
    remove_partial_files(path)
    with atomic_open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(row.get(column)) for column in columns])
    return path


def plot_curves(rows: Sequence[dict], path: Path) -> Path | None:
    """The training curves (loss; training and validation accuracy; validation CCCs) as a
    picture, or None without matplotlib (the plot extra)."""
    from emonet_cli.views.plot import _import_matplotlib

    try:
        figure_class, canvas_class = _import_matplotlib()
    except EmonetError:
        return None
    epochs = [row["epoch"] for row in rows]

    def series(column: str) -> list[float]:
        values = [row.get(column) for row in rows]
        return [math.nan if v is None else float(v) for v in values]

    figure = figure_class(figsize=(12, 3.6), dpi=100, layout="constrained")
    canvas_class(figure)
    loss, accuracy, concordance = figure.subplots(1, 3)
    loss.plot(epochs, series("train_loss"), marker="o", label="training loss")
    loss.plot(epochs, series("train_expression_loss"), marker=".", label="cross-entropy")
    accuracy.plot(epochs, series("train_acc"), marker="o", label="training")
    accuracy.plot(epochs, series("val_acc"), marker="o", label="validation")
    accuracy.set_ylim(0.0, 1.02)
    for dimension in ("valence", "arousal"):
        concordance.plot(epochs, series(f"val_{dimension}_ccc"), marker="o", label=dimension)
    concordance.set_ylim(-1.02, 1.02)
    for axes, title in ((loss, "loss"), (accuracy, "accuracy"), (concordance, "validation CCC")):
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    remove_partial_files(path)
    with atomic_path(path, suffix=path.suffix) as tmp:
        figure.savefig(tmp, format="png")
    return path
