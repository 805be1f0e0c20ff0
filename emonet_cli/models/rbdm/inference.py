"""Loading RBDM's weights and running it on batches of crops, as the registry's loader and
predictor for `--model rbdm`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emonet_cli.constants import Classes
from emonet_cli.devices import autocast, out_of_memory_named, resolve_precision, select_device
from emonet_cli.errors import WeightsError
from emonet_cli.models.predictions import Predictions
from emonet_cli.models.rbdm.architecture import CLASS_NAMES, EXPRESSION_CLASSES
from emonet_cli.models.rbdm.h5weights import read_keras_h5
from emonet_cli.models.rbdm.network import RbdmNet
from emonet_cli.models.registry import RBDM
from emonet_cli.models.weights import find_weights, sha256_file, weights_not_found

LOOKUP = RBDM.lookup
WEIGHTS_ENV = LOOKUP.env  # EMONET_RBDM_WEIGHTS
PUBLISHED = RBDM.weights[EXPRESSION_CLASSES]  # the registry's table: file name, URL, SHA-256
FILENAME, URL, SHA256 = PUBLISHED.filename, PUBLISHED.url, PUBLISHED.sha256
N_LANDMARKS, EMBEDDING_SIZE = 68, 256  # Predictions' shapes; RBDM fills them with NaN
CPU_FRAMES_PER_PASS = 8


@dataclass
class LoadedRbdm:
    model: RbdmNet
    nclass: int
    path: Path
    sha256: str
    classes: Classes
    metadata: dict | None = None


def find_rbdm_weights(weights: str | Path | None = None) -> Path:
    """--weights, else $EMONET_RBDM_WEIGHTS, else the published file in the checkout's
    weights/ or the cache, looked for as every family's weights (models/weights.py). Not
    downloaded here (`emonet weights fetch rbdm` does): the one-line error says how to get it."""
    found = find_weights(EXPRESSION_CLASSES, weights, LOOKUP)
    if found is None:
        raise weights_not_found(EXPRESSION_CLASSES, weights, lookup=LOOKUP)
    return found


def load_rbdm(weights=None, nclass: int | None = None, offline: bool = False, progress=True):
    """The registry's loader: RBDM's .h5 found, read, checked and put into `RbdmNet`.
    (`offline` and `progress` change nothing: the file is never downloaded.)"""
    if nclass not in (None, EXPRESSION_CLASSES):
        raise WeightsError(
            f"--model rbdm has {EXPRESSION_CLASSES} expression classes, not {nclass}"
        )
    path = find_rbdm_weights(weights)
    model = RbdmNet()
    load_keras_weights(model, read_keras_h5(path))
    classes = Classes.named(CLASS_NAMES, labels="published")
    return LoadedRbdm(model.eval(), EXPRESSION_CLASSES, path, sha256_file(path), classes)


def load_keras_weights(model: RbdmNet, weights: dict[str, list[np.ndarray]]) -> None:
    """Keras arrays into the torch modules of the same names: kernels HWIO -> OIHW,
    depthwise (H, W, C, 1) -> (C, 1, H, W), Dense kernels transposed."""
    with torch.no_grad():
        for name, module in model.keras_modules().items():
            arrays = [torch.from_numpy(a) for a in weights[name]]
            if isinstance(module, torch.nn.BatchNorm2d):
                gamma, beta, mean, var = arrays
                targets = (module.weight, module.bias, module.running_mean, module.running_var)
                for target, value in zip(targets, (gamma, beta, mean, var)):
                    target.copy_(value)
            elif isinstance(module, torch.nn.Linear):
                module.weight.copy_(arrays[0].T)
                module.bias.copy_(arrays[1])
            elif module.groups > 1:
                module.weight.copy_(arrays[0].permute(2, 3, 0, 1))
            else:
                module.weight.copy_(arrays[0].permute(3, 2, 0, 1))


class RbdmPredictor:
    """Runs RBDM on batches of uint8 RGB 224x224 crops. `expression` is the emotions Dense
    before its softmax, so softmax(expression) is the module's probabilities; valence and
    arousal are its tanh outputs, in [-1, 1]. RBDM has no landmarks or embedding: those
    arrays are NaN, in Predictions' shapes."""

    family = "rbdm"

    def __init__(self, model: RbdmNet, device="auto", precision: str = "auto"):
        self.device = device if isinstance(device, torch.device) else select_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.nclass = model.nclass
        self.classes = Classes.named(CLASS_NAMES, labels="published")
        self.model = model.eval().to(self.device, memory_format=torch.channels_last)
        self.frames_per_pass = CPU_FRAMES_PER_PASS if self.device.type == "cpu" else None

    def __call__(self, crops: np.ndarray) -> Predictions:
        """crops: (B, 224, 224, 3) uint8 RGB, cut with preprocess.RBDM_CROP."""
        batch = torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2)
        with out_of_memory_named(self.device, len(crops)):
            parts = [self._run(chunk) for chunk in batch.split(self.frames_per_pass or len(batch))]
        expression, va = (np.concatenate(arrays) for arrays in zip(*parts))
        n = len(crops)
        return Predictions(
            expression,
            np.ascontiguousarray(va[:, 0]),
            np.ascontiguousarray(va[:, 1]),
            np.full((n, N_LANDMARKS, 2), np.nan, dtype=np.float32),
            np.full((n, EMBEDDING_SIZE), np.nan, dtype=np.float32),
        )

    def _run(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode(), autocast(self.device, self.precision):
            # mobilenet.preprocess_input: x / 127.5 - 1
            x = batch.to(self.device).float().div_(127.5).sub_(1.0)
            out = self.model(x.contiguous(memory_format=torch.channels_last))
        return out.expression.float().cpu().numpy(), out.valence_arousal.float().cpu().numpy()
