"""One model being fine-tuned: the frozen FAN run without gradients (under inference mode and
the predictor's autocast), the emotion branch trained with AdamW, validation outputs.

As in the published training, the FAN's parameters never change and its batch norms keep
their statistics; only the emotion branch (conv1x1_input_emo_2, emo_net_2, emo_fc_2) learns,
its batch norms in training mode. `train_fan` also trains the last hourglass (m1 and its
heads), whose batch norms keep their statistics.

Then `train_epoch` and `validate`, one epoch each, and `feature_cache`, the FAN features of
crops that never change, computed once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from emonet_cli.constants import EMBEDDING_SIZE
from emonet_cli.devices import autocast
from emonet_cli.evaluate.labels import Selection
from emonet_cli.evaluate.scoring import Evaluation, scored_arrays, scored_outputs
from emonet_cli.finetune.data import CropLoader, Example, batch_indices, epoch_order
from emonet_cli.finetune.losses import LossWeights, emonet_loss
from emonet_cli.models.emonet.inference import CPU_FRAMES_PER_PASS
from emonet_cli.models.emonet.model import EMOTION_BRANCH, EmoNet

if TYPE_CHECKING:
    from emonet_cli.finetune.settings import TrainingSettings

SCHEDULES = ("cosine", "constant")
LAST_STACK = ("m{i}", "top_m_{i}", "conv_last{i}", "bn_end{i}", "l{i}")


class Outputs(NamedTuple):
    """Head outputs of a batch as float32 numpy arrays (what evaluate.scored_outputs takes)."""

    expression: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray


class Trainer:
    """`model` on `device`, its trainable part, the optimizer and the learning-rate schedule
    (cosine from `lr` to 0 over `total_steps`, or constant)."""

    def __init__(
        self,
        model: EmoNet,
        device: torch.device,
        precision: str,
        *,
        lr: float,
        weight_decay: float,
        total_steps: int,
        schedule: str = "cosine",
        train_fan: bool = False,
        loss_weights: LossWeights = LossWeights(),
        class_weights: np.ndarray | None = None,
    ):
        self.device, self.precision = device, precision
        self.model = model.to(device, memory_format=torch.channels_last)
        self.train_fan = train_fan
        self.branch = [getattr(model, name) for name in EMOTION_BRANCH]
        trainable = list(self.branch)
        if train_fan:
            last = model.num_stacks - 1
            trainable += [getattr(model, name.format(i=last)) for name in LAST_STACK]
        model.requires_grad_(False)
        for module in trainable:
            module.requires_grad_(True)
        parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
        if schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=max(total_steps, 1)
            )
        elif schedule == "constant":
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: 1.0)
        else:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
        self.loss_weights = loss_weights
        self.class_weights = (
            None if class_weights is None else torch.as_tensor(class_weights).float().to(device)
        )

    @property
    def feature_bytes(self) -> int:
        """Bytes of one face's FAN features (the emotion branch's input)."""
        width = 4 if self.precision == "fp32" else 2
        channels = EMBEDDING_SIZE * (self.model.num_stacks + 1)
        return channels * 64 * 64 * width

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _branch_autocast(self):
        # bf16 trains well without loss scaling; fp16 (older GPUs) trains in float32.
        return autocast(self.device, "bf16" if self.precision == "bf16" else "fp32")

    def _for_branch(self, tensor: torch.Tensor) -> torch.Tensor:
        """A FAN output as a normal tensor (autograd may save it) of a type the trained part
        takes: float32 after an fp16 FAN."""
        return tensor.float() if self.precision == "fp16" else tensor.clone()

    def to_input(self, crops: np.ndarray) -> torch.Tensor:
        """(B, 256, 256, 3) uint8 RGB crops -> the network input, as the predictor makes it."""
        batch = torch.from_numpy(np.ascontiguousarray(crops))
        if self.device.type == "cuda":
            batch = batch.pin_memory()
        return batch.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)

    def features(self, crops: np.ndarray) -> torch.Tensor:
        """The emotion branch's input for a batch of crops: the frozen FAN under inference
        mode; with `train_fan`, the last hourglass with gradients."""
        x = self.to_input(crops)
        model = self.model
        if not self.train_fan:
            # Passes of a few faces keep a CPU's activations in its cache, as the predictor's.
            per_pass = (
                CPU_FRAMES_PER_PASS.get(self.precision) if self.device.type == "cpu" else None
            )
            with torch.inference_mode(), autocast(self.device, self.precision):
                parts = [model.fan(part)[0] for part in x.split(per_pass or len(x))]
            # One normal tensor (which autograd may save), channels-last as the convolutions'.
            features = torch.cat(parts) if len(parts) > 1 else parts[0].clone()
            return features.contiguous(memory_format=torch.channels_last)
        last = model.num_stacks - 1
        with torch.inference_mode(), autocast(self.device, self.precision):
            stem = model.stem(x)
            previous, stack_features = stem, []
            for i in range(last):
                ll, _, previous = model.stack(i, previous)
                stack_features.append(ll)
        stem, previous = self._for_branch(stem), self._for_branch(previous)
        stack_features = [self._for_branch(f) for f in stack_features]
        with self._branch_autocast():
            ll, heatmap, _ = model.stack(last, previous)
            return model.attend(stem, [*stack_features, ll], heatmap)

    def train_mode(self) -> None:
        """The FAN in evaluation mode (its batch norms keep their statistics), the emotion
        branch in training mode."""
        self.model.eval()
        for module in self.branch:
            module.train()

    def step(
        self,
        features: torch.Tensor,
        target: np.ndarray,
        valence: np.ndarray,
        arousal: np.ndarray,
    ) -> dict[str, float]:
        """One optimizer step on a batch; returns its loss, loss parts and correct count."""
        target_t = torch.as_tensor(target, dtype=torch.long, device=self.device)
        if self.precision == "fp16":
            features = features.float()
        with self._branch_autocast():
            head, _ = self.model.emotion(features)
        loss, parts = emonet_loss(
            head,
            target_t,
            torch.as_tensor(valence, dtype=torch.float32, device=self.device),
            torch.as_tensor(arousal, dtype=torch.float32, device=self.device),
            self.loss_weights,
            self.class_weights,
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        predicted = head.detach()[:, : self.model.nclass].argmax(dim=1)
        return {
            "loss": float(loss.detach()),
            **parts,
            "correct": int((predicted == target_t).sum()),
        }

    def predict(self, features: torch.Tensor) -> Outputs:
        """The head's outputs in evaluation mode, under the predictor's autocast."""
        self.model.eval()
        with torch.inference_mode(), autocast(self.device, self.precision):
            head, _ = self.model.emotion(features)
        head = head.float().cpu().numpy()
        nclass = self.model.nclass
        return Outputs(head[:, :nclass], head[:, nclass], head[:, nclass + 1])

    def state(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state(self, optimizer: dict, scheduler: dict) -> None:
        self.optimizer.load_state_dict(optimizer)
        self.scheduler.load_state_dict(scheduler)


# --- epochs -------------------------------------------------------------------------------------


def labels_of(examples: Sequence[Example]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class targets, valence and arousal (NaN where missing) of the examples."""

    def value(v: float | None) -> float:
        return math.nan if v is None else v

    return (
        np.array([e.target for e in examples]),
        np.array([value(e.row.valence) for e in examples], dtype=np.float32),
        np.array([value(e.row.arousal) for e in examples], dtype=np.float32),
    )


def feature_cache(
    trainer: Trainer,
    loader: CropLoader,
    batch_size: int,
    mirror: bool,
    budget: int,
    progress: bool = False,
) -> list[torch.Tensor] | None:
    """The FAN features of every plain crop of `loader` (followed by their mirrors' with
    `mirror`), computed in fixed batches in file order, or None when they do not fit in
    `budget` bytes or the FAN trains."""
    count = len(loader.examples)
    if not count or trainer.train_fan or count * trainer.feature_bytes * (1 + mirror) > budget:
        return None
    plain, mirrored = [], []
    batches = batch_indices(np.arange(count), batch_size)
    with tqdm(total=count, disable=not progress, unit="face", leave=False, desc="features") as bar:
        for indices, crops in loader.batches(batches):
            if mirror:
                crops = np.concatenate([crops, crops[:, :, ::-1]])
            features = trainer.features(crops)
            plain.extend(features[: len(indices)].unbind(0))
            mirrored.extend(features[len(indices) :].unbind(0))
            bar.update(len(indices))
    return plain + mirrored


def stacked(cache: list[torch.Tensor], indices) -> torch.Tensor:
    batch = torch.stack([cache[int(i)] for i in indices])
    return batch.contiguous(memory_format=torch.channels_last)


def train_epoch(
    trainer: Trainer,
    loader: CropLoader,
    cache: list[torch.Tensor] | None,
    settings: TrainingSettings,
    epoch: int,
    on_batch: Callable[[int], object],
) -> dict:
    """One pass over the training faces in the epoch's order; returns the training columns
    of metrics.csv."""
    targets, valence, arousal = labels_of(loader.examples)
    nclass = trainer.model.nclass
    order = epoch_order(targets, nclass, settings.seed, epoch, settings.balance)
    batches = batch_indices(order, settings.batch_size)
    augmented = None if settings.augmentation is None else epoch
    source = ((b, None) for b in batches) if cache else loader.batches(batches, augmented)
    trainer.train_mode()
    sums = {"loss": 0.0, "expression": 0.0, "affect": 0.0, "correct": 0}
    for indices, crops in source:
        features = stacked(cache, indices) if cache else trainer.features(crops)
        stats = trainer.step(features, targets[indices], valence[indices], arousal[indices])
        for key in ("loss", "expression", "affect"):
            sums[key] += stats[key] * len(indices)
        sums["correct"] += stats["correct"]
        on_batch(len(indices))
    seen = len(order)
    return {
        "train_loss": sums["loss"] / seen,
        "train_expression_loss": sums["expression"] / seen,
        "train_affect_loss": sums["affect"] / seen,
        "train_acc": sums["correct"] / seen,
    }


def validate(
    trainer: Trainer,
    loader: CropLoader,
    cache: list[torch.Tensor] | None,
    batch_size: int,
    mirror: bool,
) -> Evaluation:
    """The validation faces scored as `emonet evaluate` scores them (evaluate's flip rule
    with `mirror`: valence and arousal averaged with the mirror, all rows kept)."""
    examples = loader.examples
    count = len(examples)
    expressions, valences, arousals = [], [], []
    batches = batch_indices(np.arange(count), batch_size)
    crops_of = ((b, None) for b in batches) if cache else loader.batches(batches)
    for indices, crops in crops_of:
        if cache:
            features = stacked(cache, [*indices, *(indices + count if mirror else [])])
        else:
            with torch.no_grad():  # a trained hourglass (train_fan) records nothing here
                features = trainer.features(
                    np.concatenate([crops, crops[:, :, ::-1]]) if mirror else crops
                )
        expression, valence, arousal = scored_outputs(
            trainer.predict(features), len(indices), mirror
        )
        expressions.append(expression)
        valences.append(valence)
        arousals.append(arousal)
    return Evaluation(
        nclass=trainer.model.nclass,
        flip=mirror,
        cleaned=False,
        device=str(trainer.device),
        precision=trainer.precision,
        selection=Selection(samples=list(examples), rows=count),
        unreadable=[],
        **scored_arrays(examples, expressions, valences, arousals),
        classes=trainer.model.classes,
    )
