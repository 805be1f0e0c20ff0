"""Reading the published RBDM .h5 (Keras' HDF5 layout) and writing a stand-in in the same one.

A Keras HDF5 file holds, for each layer, a group with a `weight_names` attribute whose entries
(e.g. "block_1_expand/kernel:0") are dataset paths inside that group, and a `layer_names`
attribute listing the layers in order: at the file's root for `model.save_weights`, in the
`model_weights` group for a whole-model `model.save`. Both are read. Layers without weights
(Input, the preprocessing ops, ReLU, ZeroPadding2D, Add, pooling) are skipped.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from emonet_cli.errors import WeightsError
from emonet_cli.models.rbdm.architecture import keras_layers

NEEDS_H5PY = "--model rbdm needs h5py: pip install 'emonet-cli[rbdm]'"
KERAS_VERSION = "2.4.0"  # what the stand-in claims; the reader does not depend on it
# Layers without weights the module's model has; the stand-in lists a few, as Keras would.
WEIGHTLESS = ("input_1", "tf.math.truediv", "tf.math.subtract", "Conv1_relu", "out_relu")
WEIGHTLESS_TAIL = ("global_average_pooling2d", "global_average_pooling2d_1")


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


def standin_arrays(seed: int = 2021) -> dict[str, list[np.ndarray]]:
    """Deterministic weights (PCG64, one uniform draw per value in layer order), scaled so
    activations stay O(1): He-like kernels, BatchNorm near identity, variances in [1, 1.5]."""
    rng = np.random.Generator(np.random.PCG64(seed))
    arrays = {}
    for name, specs in keras_layers():
        arrays[name] = []
        for weight_name, shape in specs:
            u = rng.random(math.prod(shape)) * 2.0 - 1.0
            leaf = weight_name.rsplit("/", 1)[1].split(":")[0]
            if leaf == "kernel":
                # Depthwise kernels (H, W, C, 1) see H*W inputs, others H*W*I.
                fan_in = (
                    math.prod(shape[:2]) if name.endswith("depthwise") else math.prod(shape[:-1])
                )
                gain = 2.0 if len(shape) == 2 else 1.2
                values = gain * u * math.sqrt(3.0 / fan_in)
            elif leaf == "gamma":
                values = 1.0 + 0.1 * u
            elif leaf == "moving_variance":
                values = 1.0 + 0.25 * (u + 1.0)
            else:  # beta, moving_mean, bias
                values = 0.1 * u
            arrays[name].append(values.reshape(shape).astype(np.float32))
    return arrays


def write_standin_h5(path: str | Path, seed: int = 2021, whole_model: bool = False) -> Path:
    """A stand-in for the published file, in Keras' HDF5 layout (save_weights, or a whole
    model save's `model_weights` group with `whole_model`)."""
    h5py = _h5py()
    path = Path(path)
    arrays = standin_arrays(seed)
    layers = keras_layers()
    names = [*WEIGHTLESS, *(name for name, _ in layers), *WEIGHTLESS_TAIL]
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if whole_model else f
        for where in {f, root}:
            where.attrs["keras_version"] = KERAS_VERSION.encode()
            where.attrs["backend"] = b"tensorflow"
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            group = root.create_group(name)
            specs = dict(layers).get(name, ())
            group.attrs["weight_names"] = np.array([w.encode() for w, _ in specs], dtype="S")
            for (weight_name, _), array in zip(specs, arrays.get(name, ())):
                group.create_dataset(weight_name, data=array)
    return path
