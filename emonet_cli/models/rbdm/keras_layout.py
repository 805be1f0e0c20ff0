"""The HDF5 layout tf.keras 2 gives RBDM's weights, and a stand-in written in it.

The published file was written by tf.keras 2 (DISCOVER's `rbdm_source.py` imports tensorflow),
so its layout is that of `hdf5_format.save_weights_to_hdf5_group(group, model.layers)`:

- `group.attrs`: `layer_names` (every layer of `model.layers`, weightless ones included, from
  the input to the outputs), `backend` and `keras_version`, all given to h5py as bytes, which
  h5py 2 stores as fixed-length strings and h5py 3 as variable-length ASCII ones;
- one sub-group per layer, its `weight_names` attribute likewise ("Conv1/kernel:0"; an empty
  float64 array for a layer without weights), and each weight a float32 dataset at that name
  inside the sub-group, so the path is `<group>/Conv1/Conv1/kernel:0`;
- DepthwiseConv2D's weight is `depthwise_kernel:0` (Keras 3 renamed it `kernel`), BatchNorm's
  are gamma, beta, moving_mean, moving_variance, Dense's kernel then bias.

`model.save` and ModelCheckpoint's default (the file name, epoch and metrics, is a
ModelCheckpoint pattern) put that group under `model_weights`, with `keras_version` and
`backend` as strings at the root next to `model_config`, `training_config` and an
`optimizer_weights` group. The stand-in writes both; of a whole-model file it writes only what
a weights reader looks at (not the config JSON nor the optimizer state, which nothing here
reads). Which of the two the published file is could not be checked without the file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from emonet_cli.models.rbdm.architecture import BLOCKS, EXPRESSION_HEAD, VA_HEAD, keras_layers

LayerSpec = tuple[str, tuple[tuple[str, tuple[int, ...]], ...]]

# The stand-in's claim; readers (Keras 3's legacy loader and ours) do not depend on it.
KERAS2_VERSION = "2.4.0"
BACKEND = "tensorflow"
# Weightless layers tf.keras >= 2.4 puts before the backbone: the InputLayer and the two
# TFOpLambda layers of `mobilenet.preprocess_input` (x / 127.5 - 1) on a symbolic input.
# Other tf versions name these differently ("tf_op_layer_truediv", a "tf.cast" for the uint8
# input variant, a "Conv1_pad" before the stem); they hold no weights, so no reader uses them.
INPUT_LAYERS = ("input_1", "tf.math.truediv", "tf.math.subtract")
POOLING_LAYERS = ("global_average_pooling2d", "global_average_pooling2d_1")


def backbone_layer_names() -> list[str]:
    """keras.applications.MobileNetV2 (alpha 1.0, include_top=False): every layer name, in
    `model.layers` order, from Conv1 to out_relu."""
    names = ["Conv1", "bn_Conv1", "Conv1_relu"]
    for block in BLOCKS:
        p = block.prefix
        if block.expansion != 1:
            names += [p + "expand", p + "expand_BN", p + "expand_relu"]
        if block.stride == 2:
            names.append(p + "pad")  # ZeroPadding2D(correct_pad) before a 'valid' depthwise
        names += [p + "depthwise", p + "depthwise_BN", p + "depthwise_relu"]
        names += [p + "project", p + "project_BN"]
        if block.residual:
            names.append(p + "add")
    return names + ["Conv_1", "Conv_1_bn", "out_relu"]


def module_layer_names() -> list[str]:
    """Every layer of DISCOVER's MobileNetV2_Multitask model, in `model.layers` order: the
    topological order Keras gives a model whose outputs are [valence_arousal, emotions]."""
    return [*INPUT_LAYERS, *backbone_layer_names(), *POOLING_LAYERS, VA_HEAD, EXPRESSION_HEAD]


def _keras2_weight_name(layer: str, weight_name: str) -> str:
    if layer.endswith("depthwise") and weight_name.endswith("/kernel:0"):
        return f"{layer}/depthwise_kernel:0"
    return weight_name


def keras2_layers() -> list[LayerSpec]:
    """Every layer of the module's model with its tf.keras 2 weight names and Keras shapes;
    weightless layers with an empty tuple."""
    weighted = dict(keras_layers())
    return [
        (name, tuple((_keras2_weight_name(name, w), s) for w, s in weighted.get(name, ())))
        for name in module_layer_names()
    ]


def write_keras2_h5(
    path: str | Path,
    layers: list[LayerSpec],
    arrays: dict[str, list[np.ndarray]],
    whole_model: bool = True,
    h5py2_strings: bool = False,
    keras_version: str = KERAS2_VERSION,
) -> Path:
    """Write `arrays` (by layer name, in weight order) for `layers` as tf.keras 2 does:
    `model.save` layout with `whole_model`, `model.save_weights` layout without; names as
    fixed-length strings with `h5py2_strings` (tf.keras with h5py 2), else as h5py 3 does."""
    import h5py

    def names(items: list[str]):
        # tf.keras hands h5py a list of bytes; h5py 2 turned it into a numpy "S" array.
        encoded = [item.encode("utf8") for item in items]
        return np.asarray(encoded) if h5py2_strings and encoded else encoded

    path = Path(path)
    with h5py.File(path, "w") as f:
        if whole_model:
            f.attrs["keras_version"] = keras_version  # str here, bytes in the weights group
            f.attrs["backend"] = BACKEND
            group = f.create_group("model_weights")
        else:
            group = f
        # An empty list becomes an empty float64 array, with either h5py.
        group.attrs["layer_names"] = names([name for name, _ in layers])
        group.attrs["backend"] = BACKEND.encode("utf8")
        group.attrs["keras_version"] = keras_version.encode("utf8")
        # tf.keras >= 2.5 creates the layer groups sorted by name (prefix-safe group names).
        for name, specs in sorted(layers, key=lambda layer: layer[0]):
            layer_group = group.create_group(name)
            layer_group.attrs["weight_names"] = names([w for w, _ in specs])
            for (weight_name, shape), value in zip(specs, arrays.get(name, ())):
                if value.shape != shape or value.dtype != np.float32:
                    raise ValueError(f"{weight_name}: {value.dtype}{value.shape}, not {shape}")
                layer_group.create_dataset(weight_name, data=value)
    return path


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


def write_published_layout_standin(
    path: str | Path, seed: int = 2021, whole_model: bool = True, h5py2_strings: bool = False
) -> Path:
    """A stand-in for MobileNetV2_RMSE_E060_L10.8965_RMSE0.3812.h5 in tf.keras 2's layout,
    holding `standin_arrays(seed)` (deterministic PCG64 values, BN variances > 0)."""
    arrays = standin_arrays(seed)
    return write_keras2_h5(path, keras2_layers(), arrays, whole_model, h5py2_strings)
