"""`emonet finetune`: adapt EmoNet's emotion branch to a lab's own labelled faces, then write
a checkpoint that `emonet analyze`, `render` and `evaluate` run with the new class names.

Data flow: label file -> faces and class names -> train / validation split -> crops (augmented
through the aligner, read in threads ahead of the model) -> frozen FAN -> emotion branch,
loss, AdamW step -> per epoch: validation scored as `emonet evaluate` scores, metrics.csv and
its plot, best.pth and last.pth (see `state`).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emonet_cli import __version__
from emonet_cli.constants import Classes
from emonet_cli.devices import resolve_precision, select_device
from emonet_cli.errors import EmonetError
from emonet_cli.evaluate.labels import LAYOUT_AFFECTNET
from emonet_cli.evaluate.scoring import Evaluation
from emonet_cli.finetune.data import (
    CropLoader,
    Example,
    LabelledFaces,
    batch_indices,
    check_images,
    class_weights,
    read_faces,
    split,
)
from emonet_cli.finetune.report import (
    metrics_columns,
    plot_curves,
    validation_scores,
    write_metrics,
)
from emonet_cli.finetune.settings import TrainingSettings
from emonet_cli.finetune.state import (
    FORMAT,
    adapt_head,
    load_initial,
    read_resume,
    run_folder,
    save_checkpoint,
)
from emonet_cli.finetune.trainer import Trainer, feature_cache, train_epoch, validate
from emonet_cli.models.registry import DEFAULT_FAMILY
from emonet_cli.models.weights import sha256_file
from emonet_cli.outputs.writers import write_json

log = logging.getLogger("emonet")

METRICS_NAME = "metrics.csv"
PLOT_NAME = "metrics.png"
SUMMARY_NAME = "finetune.json"
# FAN features of crops that never change (no augmentation) are computed once and kept when
# they fit in this much memory: 12.6 MB a face in fp32, half in bf16.
FEATURE_CACHE_BYTES = 2 * 1024**3


@dataclass
class TrainingData:
    """The faces to train and validate on, and the classes they are labelled with."""

    classes: Classes
    train: list[Example]
    val: list[Example]
    faces: LabelledFaces
    val_faces: LabelledFaces | None = None

    def counts(self) -> dict:
        per_class = {
            split_name: {
                name: sum(e.target == c for e in examples)
                for c, name in enumerate(self.classes.names)
            }
            for split_name, examples in (("train", self.train), ("val", self.val))
        }
        skipped = dict(self.faces.skipped)
        return {"rows": self.faces.rows, "skipped": skipped, **per_class}


def prepare_data(
    labels: str | os.PathLike,
    images: Path | None,
    class_names: Sequence[str] | None = None,
    class_colors: Sequence[str] | None = None,
    val: str | os.PathLike | None = None,
    val_split: float | None = None,
    seed: int = 0,
) -> TrainingData:
    """Read, check and split the labelled faces (see data.read_faces and data.split)."""
    try:
        names = Classes.named(class_names) if class_names else None
    except ValueError as exc:
        raise EmonetError(f"--classes: {exc}") from None
    faces = read_faces(labels, names and names.names)
    labels_scheme = "affectnet" if faces.layout == LAYOUT_AFFECTNET else "index"
    try:
        classes = Classes.named(faces.class_names, class_colors, labels_scheme)
    except ValueError as exc:
        raise EmonetError(f"{labels}: {exc}") from None
    check_images(faces, images)
    data = TrainingData(classes, [], [], faces)
    if val is not None:
        data.val_faces = read_faces(val, classes.names)
        check_images(data.val_faces, images)
        data.train = [e for e in faces.examples if e.usage == "train"]
        data.val = data.val_faces.examples
    else:
        data.train, data.val = split(faces, val_split, seed)
    if len(data.train) < 2:
        raise EmonetError(f"{labels}: {len(data.train)} faces to train on; at least 2 are needed")
    counts = np.bincount([e.target for e in data.train], minlength=classes.nclass)
    absent = [name for name, count in zip(classes.names, counts) if not count]
    if absent:
        log.warning("no face to train class %s on", ", ".join(absent))
    if not data.val:
        log.warning("no validation faces: best.pth will be the last epoch's model")
    return data


@dataclass
class EpochReport:
    """One finished epoch: its metrics.csv row, whether it is the best so far, and the
    validation (an evaluate.Evaluation; None without validation faces)."""

    epoch: int
    epochs: int
    row: dict
    best: bool
    evaluation: Evaluation | None


@dataclass
class FinetuneResult:
    out_dir: Path
    best: Path
    last: Path
    metrics: Path
    plot: Path | None
    summary: Path
    best_epoch: int
    history: list[dict]
    classes: Classes


def finetune(
    labels: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    class_colors: Sequence[str] | None = None,
    init: str | os.PathLike = "published-8",
    val: str | os.PathLike | None = None,
    val_split: float | None = None,
    settings: TrainingSettings | None = None,
    device: str = "auto",
    precision: str = "auto",
    resume: bool = False,
    offline: bool = False,
    workers: int = 4,
    progress: bool = False,
    family: str = DEFAULT_FAMILY,
    plot: bool = True,
    cache_bytes: int = FEATURE_CACHE_BYTES,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> FinetuneResult:
    """Fine-tune EmoNet on the faces of `labels` (images relative to `images`) and write
    best.pth, last.pth, metrics.csv, metrics.png (with matplotlib) and finetune.json into
    `out_dir`. `resume` continues the run whose last.pth is there, with the same settings;
    without it, a folder holding a run is refused."""
    settings = settings or TrainingSettings()
    out_dir = Path(out_dir)
    images = None if images is None else Path(images)
    data = prepare_data(labels, images, class_names, class_colors, val, val_split, settings.seed)
    best_path, last_path = run_folder(out_dir, resume)
    initial = load_initial(init, offline, progress, family)
    config = {
        "labels": str(Path(labels).resolve()),
        "labels_sha256": sha256_file(Path(labels)),
        "images": None if images is None else str(images.resolve()),
        "val": None if val is None else str(Path(val).resolve()),
        "val_sha256": None if val is None else sha256_file(Path(val)),
        "val_split": val_split,
        "class_names": list(data.classes.names),
        "class_colors": None if class_colors is None else list(data.classes.colors),
        "init": str(init),
        "init_sha256": initial.sha256,
        **asdict(settings),
    }
    resumed = read_resume(last_path, config) if resume else None

    device_ = select_device(device)
    precision = resolve_precision(precision, device_)
    model = adapt_head(initial.model, data.classes.nclass, settings.seed)
    model.classes = data.classes
    if resumed is not None:
        model.load_state_dict(resumed.model_state)
    targets = np.array([e.target for e in data.train])
    steps = len(batch_indices(np.arange(len(data.train)), settings.batch_size))
    trainer = Trainer(
        model,
        device_,
        precision,
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        total_steps=steps * settings.epochs,
        schedule=settings.schedule,
        train_fan=settings.train_fan,
        loss_weights=settings.loss,
        class_weights=(
            class_weights(targets, data.classes.nclass) if settings.balance == "weight" else None
        ),
    )
    if resumed is not None:
        trainer.load_state(resumed.optimizer, resumed.scheduler)

    metadata = {
        "format": FORMAT,
        "tool": "emonet-cli",
        "version": __version__,
        "nclass": data.classes.nclass,
        "class_names": list(data.classes.names),
        "class_colors": config["class_colors"],
        "labels": data.classes.labels,
        "init": {"source": str(init), "sha256": initial.sha256, "nclass": initial.nclass},
        "settings": config,
        "runtime": {
            "device": str(device_),
            "precision": precision,
            "torch": str(torch.__version__),
        },
    }
    summary = {
        **{k: metadata[k] for k in ("tool", "version", "class_names", "labels", "init")},
        "layout": data.faces.layout,
        "counts": data.counts(),
        "settings": config,
        "runtime": metadata["runtime"],
    }
    try:
        summary_path = write_json(out_dir / SUMMARY_NAME, {**summary, "status": "running"})
    except OSError as exc:
        raise EmonetError(f"cannot write into {out_dir}: {exc.strerror or exc}") from None

    history = list(resumed.history) if resumed else []
    best_epoch = resumed.best_epoch if resumed else None
    best_score = resumed.best_score if resumed else None
    first = resumed.epoch if resumed else 0
    columns = metrics_columns(data.classes.names)
    metrics_path, plot_path = out_dir / METRICS_NAME, None
    augmentation = settings.augmentation
    train_loader = CropLoader(data.train, images, augmentation, settings.seed, workers)
    val_loader = CropLoader(data.val, images, None, settings.seed, workers)
    mirror = any(e.row.valence is not None for e in data.val)
    fixed_fan = not settings.train_fan
    budget = cache_bytes if fixed_fan else 0
    val_cache = train_cache = None
    if first < settings.epochs:
        val_cache = feature_cache(
            trainer, val_loader, settings.batch_size, mirror, budget, progress
        )
        budget -= len(val_cache or []) * trainer.feature_bytes
        if augmentation is None:
            train_cache = feature_cache(
                trainer, train_loader, settings.batch_size, False, budget, progress
            )

    for epoch in range(first, settings.epochs):
        started = time.perf_counter()
        bar = tqdm(total=len(data.train), disable=not progress, unit="face", leave=False,
                   desc=f"epoch {epoch + 1}/{settings.epochs}")  # fmt: skip
        with bar:
            row = train_epoch(trainer, train_loader, train_cache, settings, epoch, bar.update)
        row["images_per_s"] = len(data.train) / (time.perf_counter() - started)
        evaluation = None
        if data.val:
            evaluation = validate(trainer, val_loader, val_cache, settings.batch_size, mirror)
            row.update(validation_scores(evaluation))
        # Without validation faces, the last epoch is the best.
        score = row.get("val_score", math.inf)
        is_best = best_score is None or score > best_score or math.isinf(score)
        if is_best:
            best_epoch, best_score = epoch + 1, score
        row.update({"epoch": epoch + 1, "lr": trainer.lr, "best": is_best})
        row["seconds"] = time.perf_counter() - started
        history.append(row)
        done = {**metadata, "epoch": epoch + 1, "epochs": settings.epochs, "metrics": row}
        if is_best:
            save_checkpoint(best_path, trainer.model, done)
        resume_state = {
            **trainer.state(),
            "history": history,
            "best_epoch": best_epoch,
            "best_score": best_score,
        }
        save_checkpoint(last_path, trainer.model, {**done, "resume": resume_state})
        write_metrics(metrics_path, history, columns)
        if plot:
            plot_path = plot_curves(history, out_dir / PLOT_NAME)
        if on_epoch is not None:
            on_epoch(EpochReport(epoch + 1, settings.epochs, row, is_best, evaluation))

    best_row = history[best_epoch - 1] if best_epoch else None
    files = {"best": best_path, "last": last_path, "metrics": metrics_path, "plot": plot_path}
    write_json(
        summary_path,
        {
            **summary,
            "status": "done",
            "epochs_done": len(history),
            "best_epoch": best_epoch,
            "best": best_row,
            "files": {k: None if v is None else str(v) for k, v in files.items()},
        },
    )
    return FinetuneResult(
        out_dir, best_path, last_path, metrics_path, plot_path, summary_path, best_epoch,
        history, data.classes,
    )  # fmt: skip


__all__ = ["EpochReport", "FinetuneResult", "TrainingSettings", "finetune", "prepare_data"]
