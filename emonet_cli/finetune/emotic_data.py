"""EMOTIC's training people: their images read in threads ahead of the model, cut into the
network's inputs as `preprocess.PersonCrop` cuts them, and augmented as the reference does.

The reference's augmentation (train.py): on the resized context (224x224) and body (128x128)
crops, each with its own random draws, a horizontal flip with probability 0.5, then
torchvision's ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4): each factor drawn
uniformly from [0.6, 1.4] and the three applied in a random order (brightness scales the
pixels; contrast blends with the mean grey level of the crop; saturation blends with each
pixel's grey level; clipped to [0, 1] after each). Here on floats rather than PIL's 8-bit
steps. Draws come from a stream keyed by (seed, epoch, position in the epoch, crop), so that a
resumed run augments as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emonet_cli.errors import EmonetError
from emonet_cli.evaluate.emotic import PersonLabel
from emonet_cli.finetune.data import AUGMENT_STREAM, ORDER_STREAM, batch_indices, read_ahead
from emonet_cli.media.images import UnreadableImage, read_image
from emonet_cli.models.emotic.preprocess import (
    BODY_MEAN,
    BODY_SIZE,
    BODY_STD,
    CONTEXT_MEAN,
    CONTEXT_SIZE,
    CONTEXT_STD,
    _scaled,
    pixel_box,
)

JITTER = 0.4  # brightness, contrast and saturation
FLIP_PROBABILITY = 0.5
GREY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2 luma, as PIL's "L"
CONTEXT_CROP, BODY_CROP = 0, 1


def jittered(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 -> float32 on [0, 1]: flipped or not, then colour-jittered."""
    image = crop.astype(np.float32) / np.float32(255.0)
    if rng.random() < FLIP_PROBABILITY:
        image = image[:, ::-1]
    factors = rng.uniform(1.0 - JITTER, 1.0 + JITTER, size=3).astype(np.float32)
    for which in rng.permutation(3):
        factor = factors[which]
        if which == 0:  # brightness
            image = image * factor
        elif which == 1:  # contrast
            mean = np.float32((image @ GREY).mean())
            image = image * factor + mean * (1 - factor)
        else:  # saturation
            grey = (image @ GREY)[:, :, None]
            image = image * factor + grey * (1 - factor)
        image = np.clip(image, 0.0, 1.0)
    return image


def normalized(image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(H, W, 3) float on [0, 1] -> the network's (3, H, W) input."""
    return np.ascontiguousarray(((image - mean) / std).transpose(2, 0, 1).astype(np.float32))


@dataclass
class PeopleLoader:
    """The (context, body) inputs of labelled people, augmented when `augment` and an epoch
    are given, read `workers` at a time."""

    people: Sequence[PersonLabel]
    images_root: Path
    augment: bool = True
    seed: int = 0
    workers: int = 4

    def crops(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The person's resized uint8 RGB context and body, cut as PersonCrop cuts them."""
        person = self.people[index]
        try:
            image = read_image(self.images_root / person.image)
        except UnreadableImage as exc:
            raise EmonetError(f"person {person.line} of the annotations: {exc}") from None
        height, width = image.shape[:2]
        x1, y1, x2, y2 = pixel_box(person.box, width, height)
        context = cv2.resize(image, (CONTEXT_SIZE, CONTEXT_SIZE))
        body = cv2.resize(image[y1:y2, x1:x2], (BODY_SIZE, BODY_SIZE))
        return context, body

    def inputs(self, index: int, epoch: int | None, position: int) -> tuple[np.ndarray, ...]:
        context, body = self.crops(index)
        if not self.augment or epoch is None:
            return _scaled(context, CONTEXT_MEAN, CONTEXT_STD), _scaled(body, BODY_MEAN, BODY_STD)
        streams = [np.random.default_rng([self.seed, epoch, position, AUGMENT_STREAM, c])
                   for c in (CONTEXT_CROP, BODY_CROP)]  # fmt: skip
        return (
            normalized(jittered(context, streams[0]), CONTEXT_MEAN, CONTEXT_STD),
            normalized(jittered(body, streams[1]), BODY_MEAN, BODY_STD),
        )

    def batches(
        self, batches: Sequence[np.ndarray], epoch: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(indices, contexts (B, 3, 224, 224), bodies (B, 3, 128, 128)) per batch."""
        for indices, pairs in read_ahead(self.inputs, batches, epoch, self.workers):
            yield indices, np.stack([c for c, _ in pairs]), np.stack([b for _, b in pairs])


def epoch_batches(count: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The epoch's shuffled batches (the reference's DataLoader(shuffle=True)), cut as
    data.batch_indices cuts them (batch norm needs two people to train)."""
    order = np.random.default_rng([seed, epoch, ORDER_STREAM]).permutation(count)
    batches = batch_indices(order, batch_size)
    return [b for b in batches if len(b) > 1]


def labels_of(people: Sequence[PersonLabel]) -> tuple[np.ndarray, np.ndarray]:
    """(people, 26) 0/1 category labels and (people, 3) VAD on 1-10, float32."""
    categories = np.array([p.categories for p in people], dtype=np.float32)
    vad = np.array([p.vad for p in people], dtype=np.float32)
    return categories, vad
