"""How `emonet finetune --model emotic` trains: the reference's settings (Tandon's main.py and
train.py) as the documented defaults."""

from __future__ import annotations

from dataclasses import dataclass

from emonet_cli.finetune.emotic_losses import CONTINUOUS_LOSSES, DISCRETE_WEIGHTS

EMOTIC_SCHEDULES = ("step", "cosine", "constant")


@dataclass(frozen=True, kw_only=True)
class EmoticSettings:
    """Adam with weight decay over every parameter (both ResNet-18s and the fusion head), the
    learning rate times `gamma` every `step_size` epochs; loss = category_weight x the
    category loss + vad_weight x the VAD loss (see emotic_losses)."""

    epochs: int = 15
    batch_size: int = 52  # twice the categories, as the reference advises
    lr: float = 0.01
    weight_decay: float = 5e-4
    schedule: str = "step"
    step_size: int = 7
    gamma: float = 0.1
    category_weight: float = 0.5
    vad_weight: float = 0.5
    discrete_weights: str = "dynamic"
    continuous_loss: str = "smooth-l1"
    augment: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.schedule not in EMOTIC_SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(EMOTIC_SCHEDULES)}")
        if self.discrete_weights not in DISCRETE_WEIGHTS:
            raise ValueError(f"discrete_weights must be one of {', '.join(DISCRETE_WEIGHTS)}")
        if self.continuous_loss not in CONTINUOUS_LOSSES:
            raise ValueError(f"continuous_loss must be one of {', '.join(CONTINUOUS_LOSSES)}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be at least 1 and batch_size at least 2")
