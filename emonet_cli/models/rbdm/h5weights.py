"""Reading the published RBDM .h5 (Keras' HDF5 layout; `keras_layout` writes a stand-in in it).

A Keras HDF5 file holds, for each layer, a group with a `weight_names` attribute whose entries
(e.g. "block_1_expand/kernel:0") are dataset paths inside that group, and a `layer_names`
attribute listing the layers in order: at the file's root for `model.save_weights`, in the
`model_weights` group for a whole-model `model.save`. Both are read. Layers without weights
(Input, the preprocessing ops, ReLU, ZeroPadding2D, Add, pooling) are skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emonet_cli.errors import WeightsError
from emonet_cli.models.rbdm.architecture import keras_layers

NEEDS_H5PY = "--model rbdm needs h5py: pip install 'emonet-cli[rbdm]'"


def _h5py():
    try:
        import h5py
    except ImportError:
        raise WeightsError(NEEDS_H5PY) from None
    return h5py


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_keras_h5(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Every RBDM layer's weights, by Keras layer name, in Keras shapes (float32), checked
    against the architecture; one-line WeightsError naming `path` otherwise."""
    h5py = _h5py()
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise WeightsError(f"{path}: an HDF5 file but not Keras weights (no layer_names)")
            found = {}
            for name in (_text(n) for n in root.attrs["layer_names"]):
                group = root[name]
                names = [_text(w) for w in group.attrs.get("weight_names", [])]
                if names:
                    found[name] = [(w, np.asarray(group[w])) for w in names]
    except WeightsError:
        raise
    except (OSError, KeyError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise WeightsError(f"{path}: not a readable HDF5 weights file ({reason})") from None
    return _checked(path, found)


def _checked(path: Path, found: dict) -> dict[str, list[np.ndarray]]:
    expected = dict(keras_layers())
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    if unexpected:
        raise WeightsError(
            f"{path}: not RBDM's MobileNetV2 weights: unexpected layers "
            f"{', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}"
        )
    if missing:
        raise WeightsError(
            f"{path}: RBDM weights missing layers {', '.join(missing[:3])}"
            f"{' ...' if len(missing) > 3 else ''}"
        )
    weights = {}
    for name, specs in expected.items():
        arrays = found[name]
        if len(arrays) != len(specs):
            raise WeightsError(f"{path}: layer {name} has {len(arrays)} weights, not {len(specs)}")
        for (weight_name, shape), (_, array) in zip(specs, arrays):
            if array.shape != shape:
                raise WeightsError(
                    f"{path}: {weight_name} has shape {array.shape}, RBDM's is {shape}"
                )
            if not np.isfinite(array).all():
                raise WeightsError(f"{path}: {weight_name} holds NaN or Inf values")
        weights[name] = [array.astype(np.float32) for _, array in arrays]
    return weights
