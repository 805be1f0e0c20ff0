"""`emonet finetune` from Python: adapt EmoNet to a lab's own labelled faces.

    from emonet_cli.finetune import TrainingSettings, finetune

    result = finetune("labels.csv", "model/", images="faces/", class_names=["calm", "pain"],
                      settings=TrainingSettings(epochs=5))
    print(result.best, result.history[-1]["val_acc"])

Modules: `data` (label files, classes, split, crops and augmentation), `losses`, `trainer`
(one model being trained, one epoch), `state` (checkpoints and resuming), `report`
(metrics.csv and its plot), `train` (the whole run), `benchmark` (training images/s).
Names are imported on first use, so that `import emonet_cli.finetune` loads no torch.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "finetune": "emonet_cli.finetune.train",
    "prepare_data": "emonet_cli.finetune.train",
    "TrainingSettings": "emonet_cli.finetune.settings",
    "FinetuneResult": "emonet_cli.finetune.train",
    "Augmentation": "emonet_cli.finetune.data",
    "LossWeights": "emonet_cli.finetune.losses",
    "training_throughput": "emonet_cli.finetune.benchmark",
}

__all__ = list(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'emonet_cli.finetune' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
