"""Training throughput of `emonet finetune` for `make bench`: faces per second through the
whole training step (reading and augmenting crops in threads, the frozen FAN under inference
mode, the emotion branch forward and backward, the AdamW step), on generated images.

    from emonet_cli.finetune.benchmark import training_throughput
    print(training_throughput(batch_size=16, steps=4))
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from emonet_cli.evaluate.labels import LabelRow
from emonet_cli.finetune.data import Augmentation, CropLoader, Example, batch_indices

IMAGE_SIDE = 320  # generated frames, each with a face box for the aligner
FACE_BOX = (90.0, 70.0, 230.0, 250.0)


def generated_examples(count: int, nclass: int, seed: int = 0) -> list[Example]:
    """`count` labelled frames of smooth random colour blobs with a face box (speed does not
    depend on what they show)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
    examples = []
    for i in range(count):
        image = np.kron(small[i], np.ones((IMAGE_SIDE // 8, IMAGE_SIDE // 8, 1), dtype=np.uint8))
        row = LabelRow(
            i + 1, f"generated {i}", i % nclass, rng.uniform(-1, 1), rng.uniform(-1, 1), FACE_BOX
        )
        examples.append(Example(row, i % nclass, pixels=image))
    return examples


def training_throughput(
    batch_size: int = 16,
    steps: int = 3,
    *,
    device: str = "auto",
    precision: str = "auto",
    augment: bool = True,
    weights: str | Path | None = None,
    workers: int = 4,
) -> dict:
    """Faces per second of fine-tuning steps after one warm-up step. With `weights` None the
    published 8-class layout is filled by torch's initialisation (speed does not depend on
    the values)."""
    import torch

    from emonet_cli.devices import resolve_precision, select_device
    from emonet_cli.finetune.trainer import Trainer, labels_of
    from emonet_cli.models.emonet.checkpoint import load_model
    from emonet_cli.models.emonet.model import EmoNet

    device_ = select_device(device)
    precision = resolve_precision(precision, device_)
    model = EmoNet(8).eval() if weights is None else load_model(weights, offline=True).model
    examples = generated_examples(batch_size * (steps + 1), model.nclass)
    trainer = Trainer(model, device_, precision, lr=3e-4, weight_decay=0.01, total_steps=steps + 1)
    loader = CropLoader(examples, None, Augmentation() if augment else None, workers=workers)
    targets, valence, arousal = labels_of(examples)
    batches = batch_indices(np.arange(len(examples)), batch_size)
    trainer.train_mode()
    started = None
    for number, (indices, crops) in enumerate(loader.batches(batches, epoch=0)):
        if number == 1:
            if device_.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        features = trainer.features(crops)
        trainer.step(features, targets[indices], valence[indices], arousal[indices])
    if device_.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {
        "images_per_s": batch_size * steps / seconds,
        "seconds": seconds,
        "batch_size": batch_size,
        "steps": steps,
        "device": str(device_),
        "precision": precision,
        "augment": augment,
        "threads": torch.get_num_threads(),
    }
