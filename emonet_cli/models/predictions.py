"""What every family's predictor returns for a batch of inputs, as numpy arrays on the host
(no torch here: the pipeline and the writers read it without running a network)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass
class Predictions:
    """Model outputs for a batch of B inputs, float32. A family fills what it gives (see its
    registry entry's `outputs`); landmarks and embedding of a family without them are NaN."""

    expression: np.ndarray  # (B, nclass) logits; (B, 0) for a family without expressions
    valence: np.ndarray  # (B,) in [-1, 1]
    arousal: np.ndarray  # (B,) in [-1, 1]
    landmarks: np.ndarray  # (B, 68, 2) x, y of the heatmap maxima in crop pixels
    embedding: np.ndarray  # (B, 256)
    dominance: np.ndarray | None = None  # (B,) in [-1, 1]
    categories: np.ndarray | None = None  # (B, K) raw category scores, not probabilities

    @property
    def probabilities(self) -> np.ndarray:
        return softmax(self.expression)

    def __len__(self) -> int:
        return len(self.valence)

    def heads(self) -> np.ndarray:
        """(B, d) every score a row is judged by: expression logits, valence, arousal, then
        dominance and the category scores where the family gives them."""
        columns = [self.expression, self.valence[:, None], self.arousal[:, None]]
        if self.dominance is not None:
            columns.append(self.dominance[:, None])
        if self.categories is not None:
            columns.append(self.categories)
        return np.concatenate(columns, axis=1)


def softmax(logits: np.ndarray) -> np.ndarray:
    if logits.shape[-1] == 0:
        return logits.astype(np.float32, copy=True)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


class Predictor(Protocol):
    """Runs a loaded network on a batch of inputs cut by its family's crop (see
    registry.ModelFamily.crop)."""

    family: str  # its registry entry
    nclass: int  # expression classes; 0 for a family without expressions
    device: Any
    precision: str
    classes: Any  # constants.Classes: names and colours of the expression classes

    def __call__(self, inputs: Any) -> Predictions: ...
