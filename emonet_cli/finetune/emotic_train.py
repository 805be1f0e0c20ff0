"""`emonet finetune --model emotic`: train EMOTIC's fusion network on the dataset's
Annotations.mat as Tandon's re-implementation trains it, then choose each category's threshold
on the validation split, and write `best.pth`, which `emonet analyze` and `evaluate` load.

Data flow: Annotations.mat -> train and val people (evaluate.emotic_mat) -> inputs, augmented
(emotic_data) -> body ResNet-18 (ImageNet) and context ResNet-18 (Places365) -> fusion head ->
the reference's losses (emotic_losses), Adam, step schedule -> per epoch: validation scored as
`emonet evaluate` scores (mAP, VAD MAE), metrics.csv, best.pth and last.pth -> thresholds.

Files of OUTPUT_DIR:
  best.pth  - the epoch with the best validation mAP, a plain state dict of EmoticNet (tensors
              only, thresholds included), as `emonet weights convert emotic` writes;
  last.pth  - the last epoch's model, optimizer, schedule and metrics, for --resume;
  metrics.csv, finetune.json, val_scores.csv (the validation scores the thresholds come from).

The thresholds: best.pth is loaded as `emonet evaluate --model emotic ANNOTATIONS --split val
--weights best.pth` loads it, run on the validation people by the same code (evaluate's
`evaluate_people`, batches of 32, at the run's precision), and each category's threshold is
metrics.equal_precision_recall_threshold of those scores (the reference's rule).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from emonet_cli import __version__
from emonet_cli.devices import autocast, resolve_precision, select_device
from emonet_cli.errors import EmonetError
from emonet_cli.evaluate.emotic import (
    PersonEvaluation,
    PersonLabel,
    evaluate_people,
    write_person_scores,
)
from emonet_cli.evaluate.emotic_mat import EmoticSplit, read_annotations
from emonet_cli.finetune.emotic_data import PeopleLoader, epoch_batches, labels_of
from emonet_cli.finetune.emotic_losses import category_loss, vad_loss
from emonet_cli.finetune.emotic_settings import EmoticSettings
from emonet_cli.finetune.report import write_metrics
from emonet_cli.finetune.state import check_same_settings, run_folder
from emonet_cli.formats.fileio import atomic_open, atomic_path, remove_partial_files
from emonet_cli.models.emotic.backbones import load_backbone
from emonet_cli.models.emotic.inference import EmoticPredictor
from emonet_cli.models.emotic.metrics import CATEGORIES, category_thresholds
from emonet_cli.models.emotic.network import EmoticNet
from emonet_cli.models.emotic.safeload import load_emotic
from emonet_cli.models.torchfile import load_weights_only
from emonet_cli.models.weights import sha256_file
from emonet_cli.outputs.writers import write_json

log = logging.getLogger("emonet")

FORMAT = 1
METRICS_NAME = "metrics.csv"
SUMMARY_NAME = "finetune.json"
VAL_SCORES_NAME = "val_scores.csv"
EPOCH_SEED_STRIDE = 1_000_003
EVALUATE_BATCH = 32  # `emonet evaluate`'s default --batch-size: the thresholds' scores
COLUMNS = ["epoch", "lr", "train_loss", "train_category_loss", "train_vad_loss", "val_people",
           "val_map", "val_vad_mae", "best", "people_per_s", "seconds"]  # fmt: skip


@dataclass
class EmoticEpoch:
    """One finished epoch: its metrics.csv row and whether it is the best so far."""

    epoch: int
    epochs: int
    row: dict
    best: bool


@dataclass
class EmoticResult:
    out_dir: Path
    best: Path
    last: Path
    metrics: Path
    summary: Path
    val_scores: Path | None
    best_epoch: int
    history: list[dict]
    thresholds: np.ndarray
    train_people: int
    val_people: int


def usable(split: EmoticSplit, images: Path) -> list[PersonLabel]:
    """The split's people whose image file exists (the reference skips the others)."""
    people = [p for p in split.people if (images / p.image).is_file()]
    missing = len(split.people) - len(people)
    if missing:
        log.warning("%s: %d %s people left out: their image is not in %s",
                    split.path, missing, split.split, images)  # fmt: skip
    return people


def initial_model(settings: EmoticSettings, body, context) -> EmoticNet:
    """EmoticNet with the backbones' weights and a fusion head drawn from the seed."""
    torch.manual_seed(settings.seed)
    model = EmoticNet()
    model.body.load_state_dict(body.state)
    model.context.load_state_dict(context.state)
    return model


def make_schedule(optimizer, settings: EmoticSettings):
    """Stepped once per epoch: "step" (the reference: x gamma every step_size epochs),
    "cosine" to 0 over the run, or "constant"."""
    if settings.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, settings.step_size, settings.gamma)
    if settings.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def train_epoch(model, optimizer, loader, people, settings, epoch, device, precision, on_batch):
    """One pass over the training people; returns the loss columns (per person)."""
    categories, vad = labels_of(people)
    batches = epoch_batches(len(people), settings.batch_size, settings.seed, epoch)
    model.train()
    sums = {"loss": 0.0, "category": 0.0, "vad": 0.0}
    seen = 0
    for indices, contexts, bodies in loader.batches(batches, epoch if settings.augment else None):
        target_cat = torch.from_numpy(categories[indices]).to(device)
        target_vad = torch.from_numpy(vad[indices]).to(device)
        with autocast(device, "bf16" if precision == "bf16" else "fp32"):
            scores, predicted = model(
                torch.from_numpy(contexts).to(device).contiguous(memory_format=torch.channels_last),
                torch.from_numpy(bodies).to(device).contiguous(memory_format=torch.channels_last),
            )
        cat = category_loss(scores.float(), target_cat, settings.discrete_weights)
        cont = vad_loss(predicted.float(), target_vad, settings.continuous_loss)
        loss = settings.category_weight * cat + settings.vad_weight * cont
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for key, value in (("loss", loss), ("category", cat), ("vad", cont)):
            sums[key] += float(value.detach())
        seen += len(indices)
        on_batch(len(indices))
    return {
        "train_loss": sums["loss"] / seen,
        "train_category_loss": sums["category"] / seen,
        "train_vad_loss": sums["vad"] / seen,
    }


def score_people(model, people, images, device, precision, progress=False) -> PersonEvaluation:
    """The people scored as `emonet evaluate --model emotic` scores them."""
    predictor = EmoticPredictor(model, device, precision)
    return evaluate_people(people, images, predictor, EVALUATE_BATCH, progress=progress)


def save_state(path: Path, document: dict) -> Path:
    remove_partial_files(path)
    with atomic_path(path) as tmp:
        torch.save(document, tmp)
    return path


def save_weights(path: Path, model: EmoticNet) -> Path:
    """A plain state dict (contiguous CPU tensors), as `weights convert emotic` writes it."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    remove_partial_files(path)
    with atomic_open(path, "wb") as out:
        torch.save(state, out)
    return path


def finetune_emotic(
    annotations: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    images: str | os.PathLike,
    settings: EmoticSettings | None = None,
    body_init: str | os.PathLike | None = None,
    context_init: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "auto",
    resume: bool = False,
    offline: bool = False,
    workers: int = 4,
    progress: bool = False,
    on_epoch: Callable[[EmoticEpoch], None] | None = None,
) -> EmoticResult:
    """Train EMOTIC on the train split of `annotations` (images under `images`), pick the best
    epoch by validation mAP, choose the thresholds on the val split and write OUTPUT_DIR's
    files (see the module). `resume` continues the run whose last.pth is there."""
    settings = settings or EmoticSettings()
    out_dir, images = Path(out_dir), Path(images)
    train = usable(read_annotations(annotations, "train"), images)
    val = usable(read_annotations(annotations, "val"), images)
    if len(train) < 2:
        raise EmonetError(f"{annotations}: {len(train)} people to train on; at least 2 are needed")
    if not val:
        log.warning("no validation people: best.pth is the last epoch, its thresholds 0")
    best_path, last_path = run_folder(out_dir, resume)
    resumed = None
    if resume:
        if not last_path.is_file():
            raise EmonetError(f"nothing to resume: {last_path} does not exist")
        resumed = load_weights_only(last_path)
        if not isinstance(resumed, dict) or (resumed.get("format"), resumed.get("model")) != (
            FORMAT,
            "emotic",
        ):
            raise EmonetError(f"{last_path} is not the last checkpoint of an EMOTIC training run")
    body = load_backbone("body", body_init, offline, progress)
    context = load_backbone("context", context_init, offline, progress)
    config = {
        "annotations": str(Path(annotations).resolve()),
        "annotations_sha256": sha256_file(Path(annotations)),
        "images": str(images.resolve()),
        "body_init_sha256": body.sha256,
        "context_init_sha256": context.sha256,
        **asdict(settings),
    }
    if resumed is not None:
        check_same_settings(last_path, resumed.get("settings", {}), config)

    device_ = select_device(device)
    precision = resolve_precision(precision, device_)
    model = initial_model(settings, body, context)
    if resumed is not None:
        model.load_state_dict(resumed["weights"])
    model = model.to(device_, memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    schedule = make_schedule(optimizer, settings)
    if resumed is not None:
        optimizer.load_state_dict(resumed["optimizer"])
        schedule.load_state_dict(resumed["schedule"])
    runtime = {"device": str(device_), "precision": precision, "torch": str(torch.__version__)}
    summary = {
        "tool": "emonet-cli",
        "version": __version__,
        "model": "emotic",
        "people": {"train": len(train), "val": len(val)},
        "body_init": {"path": str(body.path), "sha256": body.sha256},
        "context_init": {"path": str(context.path), "sha256": context.sha256},
        "settings": config,
        "runtime": runtime,
    }
    summary_path = write_json(out_dir / SUMMARY_NAME, {**summary, "status": "running"})

    history = list(resumed["history"]) if resumed else []
    best_epoch = resumed.get("best_epoch") if resumed else None
    best_score = resumed.get("best_score") if resumed else None
    loader = PeopleLoader(train, images, settings.augment, settings.seed, workers)
    metrics_path = out_dir / METRICS_NAME
    for epoch in range(len(history), settings.epochs):
        started = time.perf_counter()
        # Dropout draws from torch's generator: seeded per epoch, a resumed run draws as an
        # uninterrupted one.
        torch.manual_seed(settings.seed * EPOCH_SEED_STRIDE + epoch)
        lr = float(optimizer.param_groups[0]["lr"])
        bar = tqdm(total=len(train), disable=not progress, unit="person", leave=False,
                   desc=f"epoch {epoch + 1}/{settings.epochs}")  # fmt: skip
        with bar:
            row = train_epoch(model, optimizer, loader, train, settings, epoch, device_,
                              precision, bar.update)  # fmt: skip
        row["people_per_s"] = len(train) / (time.perf_counter() - started)
        schedule.step()
        score = math.inf  # without validation people, the last epoch is the best
        if val:
            evaluation = score_people(model, val, images, device_, precision)
            score = evaluation.average_precisions()[1]
            row.update({"val_people": len(val), "val_map": score,
                        "val_vad_mae": evaluation.vad_errors()[1]})  # fmt: skip
        is_best = best_score is None or score > best_score or math.isinf(score)
        if is_best:
            best_epoch, best_score = epoch + 1, score
            save_weights(best_path, model)
        row.update({"epoch": epoch + 1, "lr": lr, "best": is_best,
                    "seconds": time.perf_counter() - started})  # fmt: skip
        history.append(row)
        weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        save_state(last_path, {
            "format": FORMAT, "model": "emotic", "settings": config, "history": history,
            "best_epoch": best_epoch, "best_score": best_score, "weights": weights,
            "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
        })  # fmt: skip
        write_metrics(metrics_path, history, COLUMNS)
        if on_epoch is not None:
            on_epoch(EmoticEpoch(epoch + 1, settings.epochs, row, is_best))

    thresholds, val_scores = choose_thresholds(best_path, val, images, device_, precision,
                                               out_dir / VAL_SCORES_NAME, progress)  # fmt: skip
    write_json(summary_path, {
        **summary, "status": "done", "epochs_done": len(history), "best_epoch": best_epoch,
        "best": history[best_epoch - 1] if best_epoch else None,
        "thresholds": dict(zip(CATEGORIES, map(float, thresholds))),
    })  # fmt: skip
    return EmoticResult(out_dir, best_path, last_path, metrics_path, summary_path, val_scores,
                        best_epoch, history, thresholds, len(train), len(val))  # fmt: skip


def choose_thresholds(best_path, val, images, device, precision, scores_path, progress):
    """Load best.pth as evaluate does, score the validation people, choose the thresholds,
    and write them into best.pth (with val_scores.csv)."""
    model = load_emotic(best_path)
    if not val:
        return model.thresholds.numpy().copy(), None
    evaluation = score_people(model, val, images, device, precision, progress)
    thresholds = category_thresholds(evaluation.category_labels(), evaluation.scores)
    model = model.cpu()
    model.thresholds.copy_(torch.from_numpy(thresholds))
    save_weights(best_path, model)
    return thresholds, write_person_scores(scores_path, evaluation)
