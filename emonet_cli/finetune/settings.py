"""How a fine-tuning run trains: the one table of its documented defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from emonet_cli.finetune.data import BALANCE_CHOICES, Augmentation
from emonet_cli.finetune.losses import LossWeights


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    """How to train (the documented defaults). `augmentation` None trains on the plain crops."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 0.01
    schedule: str = "cosine"
    seed: int = 0
    augmentation: Augmentation | None = field(default_factory=Augmentation)
    balance: str = "none"  # "sample": class-balanced sampling; "weight": loss weights
    loss: LossWeights = field(default_factory=LossWeights)
    train_fan: bool = False

    def __post_init__(self):
        if self.balance not in BALANCE_CHOICES:
            raise ValueError(f"balance must be one of {', '.join(BALANCE_CHOICES)}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("epochs must be at least 1 and batch_size at least 2")
