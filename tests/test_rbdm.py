"""RBDM (--model rbdm) against independent references: a stand-in .h5 in tf.keras 2's layout,
every Keras layer mapped, the stem, the first two blocks and the heads against NumPy, the
whole network and the predictor against DISCOVER's Keras definition (Keras 3, torch backend),
the module's crop, and one-line refusals of files that are not RBDM's weights."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from click.testing import CliRunner
from discover_module_crop import module_crop, module_matrix, module_pixel_boxes

from emonet_cli.cli import cli
from emonet_cli.errors import WeightsError
from emonet_cli.faces import boxes_from_normalised
from emonet_cli.models.rbdm.architecture import CLASS_NAMES
from emonet_cli.models.rbdm.h5weights import read_keras_h5
from emonet_cli.models.rbdm.inference import (
    FILENAME,
    SHA256,
    RbdmPredictor,
    load_keras_weights,
    load_rbdm,
)
from emonet_cli.models.rbdm.keras_layout import (
    keras2_layers,
    module_layer_names,
    standin_arrays,
    write_keras2_h5,
    write_published_layout_standin,
)
from emonet_cli.models.rbdm.network import RbdmNet
from emonet_cli.models.rbdm.preprocess import RBDM_CROP, normalise

h5py = pytest.importorskip("h5py")

# DISCOVER's rbdm.py _label_map, classes 0..7; the release asset named in issue 23.
DISCOVER_CLASSES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
PUBLISHED_FILE = "MobileNetV2_RMSE_E060_L10.8965_RMSE0.3812.h5"
PUBLISHED_SHA256 = "83cf14709c7919ce97b181534342402e655b4e8b2a7e86261a08cced90e41576"
ASTRONAUT_FACE = (180.0, 40.0, 290.0, 170.0)
WEIGHTED_LAYERS = 106  # 52 convolutions, 52 BatchNorms, 2 Dense
ALL_LAYERS = 160  # what model.layers of DISCOVER's model lists, weightless layers included
EPS = 1e-3  # Keras' MobileNetV2 BatchNormalization epsilon


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return write_published_layout_standin(tmp_path_factory.mktemp("rbdm") / PUBLISHED_FILE)


@pytest.fixture(scope="module")
def net(standin):
    model = RbdmNet()
    load_keras_weights(model, read_keras_h5(standin))
    return model.eval()


@pytest.fixture(scope="module")
def crops():
    """uint8 RGB 224x224 crops as the module feeds them: a face cut by its warp, and noise."""
    face = module_crop(skimage.data.astronaut(), np.float32(ASTRONAUT_FACE), 224)
    noise = np.random.Generator(np.random.PCG64(7)).integers(0, 256, (224, 224, 3), np.uint8)
    return np.stack([face, noise])


@pytest.fixture(scope="module")
def x(crops):
    return torch.from_numpy(normalise(crops)).permute(0, 3, 1, 2)


def test_published_names_and_class_order(standin):
    assert (FILENAME, SHA256) == (PUBLISHED_FILE, PUBLISHED_SHA256)
    assert CLASS_NAMES == DISCOVER_CLASSES
    loaded = load_rbdm(standin, None, True, False)
    assert loaded.nclass == 8 and tuple(loaded.classes.names) == DISCOVER_CLASSES
    assert loaded.path == standin and len(loaded.sha256) == 64


@pytest.mark.parametrize("whole_model", [True, False])
@pytest.mark.parametrize("h5py2_strings", [False, True])
def test_the_published_layout_loads_and_every_layer_maps(tmp_path, whole_model, h5py2_strings):
    path = write_published_layout_standin(tmp_path / "w.h5", 3, whole_model, h5py2_strings)
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if whole_model else f
        assert len(group.attrs["layer_names"]) == ALL_LAYERS
        depthwise = group["block_1_depthwise"]
        assert list(depthwise.attrs["weight_names"]) in (
            [b"block_1_depthwise/depthwise_kernel:0"],
            ["block_1_depthwise/depthwise_kernel:0"],
        )
        assert depthwise["block_1_depthwise/depthwise_kernel:0"].dtype == np.float32
        assert len(group["block_1_pad"].attrs["weight_names"]) == 0
    weights = read_keras_h5(path)
    assert len(weights) == WEIGHTED_LAYERS
    model = RbdmNet()
    load_keras_weights(model, weights)
    modules = model.keras_modules()
    assert set(modules) == set(weights)
    # Every value of the file lands in the network, and the network holds nothing else.
    in_file = sum(a.size for arrays in weights.values() for a in arrays)
    buffers = [b for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")]
    assert in_file == sum(t.numel() for t in (*model.parameters(), *buffers))
    for name, arrays in standin_arrays(3).items():
        module = modules[name]
        if isinstance(module, torch.nn.BatchNorm2d):
            ours = [module.weight, module.bias, module.running_mean, module.running_var]
            expected = arrays
        elif isinstance(module, torch.nn.Linear):
            ours, expected = [module.weight, module.bias], [arrays[0].T, arrays[1]]
        elif name.endswith("depthwise"):  # (H, W, C, 1) -> (C, 1, H, W)
            ours, expected = [module.weight], [arrays[0].transpose(2, 3, 0, 1)]
        else:  # HWIO -> OIHW
            ours, expected = [module.weight], [arrays[0].transpose(3, 2, 0, 1)]
        for tensor, array in zip(ours, expected):
            np.testing.assert_array_equal(tensor.detach().numpy(), array, err_msg=name)


# NumPy references, NHWC in float64, written from the Keras layer definitions.
def batch_norm(x, gamma, beta, mean, var):
    return (x - mean) / np.sqrt(var + EPS) * gamma + beta


def relu6(x):
    return np.clip(x, 0.0, 6.0)


def depthwise3x3(x, kernel, stride, pad):
    """DepthwiseConv2D 'valid' after zero padding ((top, bottom), (left, right))."""
    x = np.pad(x, ((0, 0), *pad, (0, 0)))
    out_h, out_w = (x.shape[1] - 3) // stride + 1, (x.shape[2] - 3) // stride + 1
    out = 0.0
    for i in range(3):
        for j in range(3):
            window = x[:, i : i + stride * out_h : stride, j : j + stride * out_w : stride]
            out = out + window * kernel[i, j, :, 0]
    return out


def conv3x3_same_stride2(x, kernel):
    """Conv2D(padding='same', strides=2) on an even size: TensorFlow pads one row and column
    after, none before."""
    x = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    out_h, out_w = (x.shape[1] - 3) // 2 + 1, (x.shape[2] - 3) // 2 + 1
    out = 0.0
    for i in range(3):
        for j in range(3):
            out = out + x[:, i : i + 2 * out_h : 2, j : j + 2 * out_w : 2] @ kernel[i, j]
    return out


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).numpy()


def test_stem_and_first_two_blocks_match_numpy(net, x):
    w = standin_arrays()
    with torch.no_grad():
        stem = net.stem(x)
        block0 = net.blocks[0](stem)
        block1 = net.blocks[1](block0)
    ref = conv3x3_same_stride2(nhwc(x).astype(np.float64), w["Conv1"][0])
    ref = relu6(batch_norm(ref, *w["bn_Conv1"]))
    np.testing.assert_allclose(nhwc(stem), ref, rtol=1e-5, atol=1e-4)
    # expanded_conv_: no expansion, depthwise 3x3 'same' stride 1, linear projection.
    h = depthwise3x3(nhwc(stem), w["expanded_conv_depthwise"][0], 1, ((1, 1), (1, 1)))
    h = relu6(batch_norm(h, *w["expanded_conv_depthwise_BN"]))
    h = batch_norm(h @ w["expanded_conv_project"][0][0, 0], *w["expanded_conv_project_BN"])
    np.testing.assert_allclose(nhwc(block0), h, rtol=1e-5, atol=1e-4)
    # block_1_: expand 6x, ZeroPadding2D(correct_pad) = ((0, 1), (0, 1)) on 112, stride 2.
    h = relu6(batch_norm(nhwc(block0) @ w["block_1_expand"][0][0, 0], *w["block_1_expand_BN"]))
    h = depthwise3x3(h, w["block_1_depthwise"][0], 2, ((0, 1), (0, 1)))
    h = relu6(batch_norm(h, *w["block_1_depthwise_BN"]))
    h = batch_norm(h @ w["block_1_project"][0][0, 0], *w["block_1_project_BN"])
    assert h.shape == (2, 56, 56, 24)
    np.testing.assert_allclose(nhwc(block1), h, rtol=1e-5, atol=1e-4)


def test_heads_match_numpy(net, x):
    w = standin_arrays()
    with torch.no_grad():
        features = net.features(x)  # out_relu, (B, 1280, 7, 7)
        expression, va = net.heads(features.mean(dim=(2, 3)))
    pooled = features.double().mean(dim=(2, 3)).numpy()  # GlobalAveragePooling2D
    logits = pooled @ w["emotions"][0] + w["emotions"][1]
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)  # the emotions Dense's softmax
    np.testing.assert_allclose(torch.softmax(expression, 1).numpy(), probabilities, atol=1e-5)
    reference_va = np.tanh(pooled @ w["valence_arousal"][0] + w["valence_arousal"][1])
    np.testing.assert_allclose(va.numpy(), reference_va, atol=1e-5)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
def test_whole_network_matches_discovers_keras_model(standin, net, crops, x):
    os.environ["KERAS_BACKEND"] = "torch"  # before the first import of keras
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("keras was imported with another backend")
    keras.backend.clear_session()  # a fresh process's automatic layer names
    # rbdm_source.MultitaskMobileNetV2Model, as DISCOVER builds it.
    i = keras.layers.Input(shape=[224, 224, 3])
    base = keras.applications.MobileNetV2(
        input_tensor=keras.applications.mobilenet.preprocess_input(i),
        weights=None,
        include_top=False,
    )
    y0 = keras.layers.GlobalAveragePooling2D()(base.output)
    y0 = keras.layers.Dense(2, activation="tanh", name="valence_arousal")(y0)
    y1 = keras.layers.GlobalAveragePooling2D()(base.output)
    y1 = keras.layers.Dense(8, activation="softmax", name="emotions")(y1)
    model = keras.Model(inputs=[i], outputs=[y0, y1], name="MobileNetV2_Multitask")
    # Keras 3 lists no layers for preprocess_input's ops; tf.keras 2 lists two (and the input).
    assert [layer.name for layer in model.layers[1:]] == module_layer_names()[3:]
    model.load_weights(str(standin))  # Keras' own reader: layer by layer, in order
    va, probabilities = (keras.ops.convert_to_numpy(t) for t in model(crops))  # raw uint8
    with torch.no_grad():
        out = net(x)
    np.testing.assert_allclose(torch.softmax(out.expression, 1).numpy(), probabilities, atol=1e-4)
    np.testing.assert_allclose(out.valence_arousal.numpy(), va, atol=1e-4)
    # The predictor follows the head: column 0 is valence, column 1 arousal.
    predicted = RbdmPredictor(net, "cpu", "fp32")(crops)
    np.testing.assert_allclose(predicted.probabilities, probabilities, atol=1e-4)
    np.testing.assert_allclose(predicted.valence, va[:, 0], atol=1e-4)
    np.testing.assert_allclose(predicted.arousal, va[:, 1], atol=1e-4)


def test_the_crop_is_the_modules_warp():
    """On float32 BlazeFace rows, as DISCOVER's streams hold them; tests/test_discover_crops.py
    does the same on a real clip's detected stream."""
    image = skimage.data.astronaut()
    height, width = image.shape[:2]
    rng = np.random.Generator(np.random.PCG64(11))
    ymin, xmin = rng.uniform(-0.1, 0.7, (2, 100))
    ymax, xmax = (ymin, xmin) + rng.uniform(0.05, 0.6, (2, 100))
    rows = np.stack([ymin, xmin, ymax, xmax], axis=1).astype(np.float32)
    ours_boxes = boxes_from_normalised(rows, 1.0, (width, height), Path("rows")).boxes
    for our_box, box in zip(ours_boxes, module_pixel_boxes(rows, (height, width))):
        ours = RBDM_CROP.matrix(our_box)
        np.testing.assert_array_equal(ours, module_matrix(box, 224))
        np.testing.assert_array_equal(
            cv2.warpAffine(image, ours, (RBDM_CROP.size,) * 2, flags=cv2.INTER_LINEAR),
            module_crop(image, box, 224),
        )


def other_architecture(path):
    layers = [
        ("input_1", ()),
        ("conv2d", (("conv2d/kernel:0", (3, 3, 3, 8)), ("conv2d/bias:0", (8,)))),
        ("dense", (("dense/kernel:0", (8, 2)), ("dense/bias:0", (2,)))),
    ]
    arrays = {name: [np.ones(shape, np.float32) for _, shape in specs] for name, specs in layers}
    return write_keras2_h5(path, layers, arrays)


def missing_layer(path):
    layers = [layer for layer in keras2_layers() if layer[0] != "block_3_project"]
    return write_keras2_h5(path, layers, standin_arrays())


def five_classes(path):
    layers = dict(keras2_layers())
    layers["emotions"] = (("emotions/kernel:0", (1280, 5)), ("emotions/bias:0", (5,)))
    arrays = standin_arrays()
    arrays["emotions"] = [np.zeros((1280, 5), np.float32), np.zeros(5, np.float32)]
    return write_keras2_h5(path, list(layers.items()), arrays)


def truncated(path):
    whole = write_published_layout_standin(path.with_suffix(".full.h5")).read_bytes()
    path.write_bytes(whole[:5000])
    return path


def holds_nan(path):
    arrays = standin_arrays()
    arrays["Conv_1"][0][0, 0, 0, 0] = np.nan
    return write_keras2_h5(path, keras2_layers(), arrays)


def not_hdf5(path):
    path.write_text("<html><body>Sign in to continue</body></html>\n")
    return path


@pytest.mark.parametrize(
    "make, reason",
    [
        (other_architecture, r"not RBDM's MobileNetV2 weights: unexpected layers conv2d, dense$"),
        (missing_layer, r"RBDM weights missing layers block_3_project$"),
        (five_classes, r"emotions/kernel:0 has shape \(1280, 5\), RBDM's is \(1280, 8\)$"),
        (holds_nan, r"Conv_1/kernel:0 holds NaN or Inf values$"),
        (truncated, r"not a readable HDF5 weights file \(.*truncated file"),
        (not_hdf5, r"not a readable HDF5 weights file \(.*signature"),
    ],
)
def test_files_that_are_not_rbdms_weights_are_refused_in_one_line(tmp_path, make, reason):
    path = make(tmp_path / "weights.h5")
    with pytest.raises(WeightsError, match=rf"^{re.escape(str(path))}: {reason}") as err:
        read_keras_h5(path)
    assert "\n" not in str(err.value)


def test_other_class_counts_are_refused(standin):
    with pytest.raises(WeightsError, match=r"^--model rbdm has 8 expression classes, not 5$"):
        load_rbdm(standin, 5)


def test_landmarks_are_a_usage_error_with_rbdm(tmp_path):
    result = CliRunner().invoke(cli, ["analyze", str(tmp_path), "--model", "rbdm", "--landmarks"])
    assert result.exit_code == 2 and "--landmarks: --model rbdm gives no landmarks" in result.output
