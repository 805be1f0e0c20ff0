"""Loading EMOTIC and running it on batches of people, as the registry's loader and predictor
for `--model emotic`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emonet_cli.constants import Classes
from emonet_cli.devices import autocast, out_of_memory_named, resolve_precision, select_device
from emonet_cli.errors import WeightsError
from emonet_cli.models.emotic.lookup import PUBLISHED_FILES, find_emotic_weights
from emonet_cli.models.emotic.network import EmoticNet
from emonet_cli.models.emotic.preprocess import emotic_to_signed
from emonet_cli.models.emotic.safeload import load_emotic
from emonet_cli.models.predictions import Predictions
from emonet_cli.models.weights import sha256_file

N_LANDMARKS, EMBEDDING_SIZE = 68, 256  # Predictions' shapes; EMOTIC fills them with NaN
# People per forward pass on the CPU: two ResNet-18s, about 2.4 GFLOP a person.
CPU_PEOPLE_PER_PASS = 8
NO_CLASSES = Classes((), ())  # EMOTIC has categories, not one expression


@dataclass
class LoadedEmotic:
    model: EmoticNet
    nclass: int
    path: Path
    sha256: str
    classes: Classes = NO_CLASSES
    metadata: dict | None = None


def load_emotic_family(weights=None, nclass: int | None = None, offline=False, progress=True):
    """The registry's loader: the converted file (or the published folder), found as
    lookup.find_emotic_weights says, read safely, checked and put into `EmoticNet`.
    (`offline` and `progress` change nothing: the files are never downloaded.)"""
    if nclass not in (None, 0):
        raise WeightsError(f"--model emotic has no expression classes (--nclass {nclass})")
    path = find_emotic_weights(weights)
    model = load_emotic(path)
    digest = sha256_file(path) if path.is_file() else folder_digest(path)
    return LoadedEmotic(model, 0, path, digest)


def folder_digest(folder: Path) -> str:
    """The published folder's identity: the SHA-256 of its files' SHA-256s, in name order."""
    digest = hashlib.sha256()
    for name in sorted(PUBLISHED_FILES):
        digest.update(f"{name} {sha256_file(folder / name)}\n".encode())
    return digest.hexdigest()


class EmoticPredictor:
    """Runs EMOTIC on batches of (contexts, bodies) cut by preprocess.PersonCrop. Valence,
    arousal and dominance come out on [-1, 1] (emotic_to_signed of the 1-10 scale);
    `categories` are the raw scores, reported where above `thresholds` (the published rule).
    EMOTIC has no expression, landmarks or embedding."""

    family = "emotic"

    def __init__(self, model: EmoticNet, device="auto", precision: str = "auto"):
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.nclass = 0
        self.classes = NO_CLASSES
        self.thresholds = model.thresholds.detach().cpu().numpy().astype(np.float32)
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        self.people_per_pass = CPU_PEOPLE_PER_PASS if self.device.type == "cpu" else None

    def __call__(self, inputs: tuple[np.ndarray, np.ndarray]) -> Predictions:
        contexts, bodies = (torch.from_numpy(np.ascontiguousarray(a)) for a in inputs)
        step = self.people_per_pass or len(contexts)
        with out_of_memory_named(self.device, len(contexts)):
            parts = [
                self._run(contexts[k : k + step], bodies[k : k + step])
                for k in range(0, len(contexts), step)
            ]
        scores, vad = (np.concatenate(arrays) for arrays in zip(*parts))
        signed = emotic_to_signed(vad).astype(np.float32)
        n = len(scores)
        return Predictions(
            expression=np.zeros((n, 0), dtype=np.float32),
            valence=np.ascontiguousarray(signed[:, 0]),
            arousal=np.ascontiguousarray(signed[:, 1]),
            landmarks=np.full((n, N_LANDMARKS, 2), np.nan, dtype=np.float32),
            embedding=np.full((n, EMBEDDING_SIZE), np.nan, dtype=np.float32),
            dominance=np.ascontiguousarray(signed[:, 2]),
            categories=scores,
        )

    def _run(self, contexts: torch.Tensor, bodies: torch.Tensor) -> tuple[np.ndarray, ...]:
        channels_last = torch.channels_last
        with torch.inference_mode(), autocast(self.device, self.precision):
            scores, vad = self.model(
                contexts.to(self.device).contiguous(memory_format=channels_last),
                bodies.to(self.device).contiguous(memory_format=channels_last),
            )
        return scores.float().cpu().numpy(), vad.float().cpu().numpy().astype(np.float64)
