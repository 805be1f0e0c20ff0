"""RBDM (--model rbdm): its .h5 reader, its network against independent references (NumPy
for the stem and heads, Keras 3 for the whole network when installed), and its crop."""

from __future__ import annotations

import math
import os

import cv2
import h5py
import numpy as np
import pytest
import skimage.data
import torch
from click.testing import CliRunner

from emonet_cli.cli import cli
from emonet_cli.errors import WeightsError
from emonet_cli.faces.align import crop_face
from emonet_cli.models.rbdm.architecture import keras_layers
from emonet_cli.models.rbdm.h5weights import read_keras_h5, standin_arrays, write_standin_h5
from emonet_cli.models.rbdm.inference import RbdmPredictor, load_rbdm
from emonet_cli.models.rbdm.preprocess import RBDM_CROP, normalise

ASTRONAUT_FACE = (180.0, 40.0, 290.0, 170.0)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return write_standin_h5(tmp_path_factory.mktemp("rbdm") / "rbdm.h5")


@pytest.fixture(scope="module")
def loaded(standin):
    return load_rbdm(standin, None, True, False)


@pytest.fixture(scope="module")
def batch():
    image = skimage.data.astronaut()
    boxes = (ASTRONAUT_FACE, (150.0, 20.0, 320.0, 200.0))
    crops = np.stack([crop_face(image, RBDM_CROP.matrix(b), RBDM_CROP.size) for b in boxes])
    return crops, normalise(crops)


@pytest.mark.parametrize("whole_model", [False, True])
def test_both_keras_layouts_load_and_every_layer_maps(tmp_path, whole_model):
    path = write_standin_h5(tmp_path / "w.h5", whole_model=whole_model)
    loaded = load_rbdm(path, 8, True, False)
    arrays = standin_arrays()
    assert set(loaded.model.keras_modules()) == {name for name, _ in keras_layers()}
    conv = loaded.model.keras_modules()["block_1_expand"].weight
    np.testing.assert_array_equal(conv.detach()[:, :, 0, 0], arrays["block_1_expand"][0][0, 0].T)
    depthwise = loaded.model.keras_modules()["block_1_depthwise"].weight.detach()
    np.testing.assert_array_equal(
        depthwise[:, 0], arrays["block_1_depthwise"][0][..., 0].transpose(2, 0, 1)
    )
    assert loaded.nclass == 8 and loaded.classes.names[0] == "Neutral" and len(loaded.sha256) == 64


def tf_same_conv_stride2(x, kernel):
    """NumPy reference: NHWC input, HWIO 3x3 kernel, TensorFlow 'same' with stride 2."""
    n, h, w, _ = x.shape
    oh, ow = math.ceil(h / 2), math.ceil(w / 2)
    pad_h, pad_w = max((oh - 1) * 2 + 3 - h, 0), max((ow - 1) * 2 + 3 - w, 0)
    x = np.pad(
        x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0))
    )
    out = np.zeros((n, oh, ow, kernel.shape[-1]), np.float64)
    for i in range(3):
        for j in range(3):
            out += x[:, i : i + 2 * oh : 2, j : j + 2 * ow : 2, :] @ kernel[i, j]
    return out


def test_stem_and_heads_match_a_numpy_reference(loaded, batch):
    _, x = batch
    arrays = standin_arrays()
    gamma, beta, mean, var = arrays["bn_Conv1"]
    ref = tf_same_conv_stride2(x.astype(np.float64), arrays["Conv1"][0])
    ref = np.clip((ref - mean) / np.sqrt(var + 1e-3) * gamma + beta, 0.0, 6.0)
    with torch.no_grad():
        ours = loaded.model.stem(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        pooled = loaded.model(torch.from_numpy(x).permute(0, 3, 1, 2)).pooled
        expression, va = loaded.model.heads(pooled)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4)
    p = pooled.numpy().astype(np.float64)
    kernel, bias = arrays["emotions"]
    np.testing.assert_allclose(expression.numpy(), p @ kernel + bias, atol=1e-4)
    kernel, bias = arrays["valence_arousal"]
    np.testing.assert_allclose(va.numpy(), np.tanh(p @ kernel + bias), atol=1e-4)


def test_whole_network_matches_keras(standin, loaded, batch):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    i = keras.Input((224, 224, 3))
    base = keras.applications.MobileNetV2(input_tensor=i, weights=None, include_top=False)
    y0 = keras.layers.GlobalAveragePooling2D()(base.output)
    y0 = keras.layers.Dense(2, activation="tanh", name="valence_arousal")(y0)
    y1 = keras.layers.GlobalAveragePooling2D()(base.output)
    y1 = keras.layers.Dense(8, activation="softmax", name="emotions")(y1)
    model = keras.Model(inputs=[i], outputs=[y0, y1])
    model.load_weights(str(standin))
    _, x = batch
    va, probs = (np.asarray(keras.ops.convert_to_numpy(t)) for t in model(x, training=False))
    out = RbdmPredictor(loaded.model, "cpu", "fp32")(batch[0])
    np.testing.assert_allclose(out.probabilities, probs, atol=1e-4)
    np.testing.assert_allclose(np.stack([out.valence, out.arousal], 1), va, atol=1e-4)


def test_crop_is_the_modules_warp(batch):
    image = skimage.data.astronaut()
    x1, y1, x2, y2 = ASTRONAUT_FACE
    # data_augmentor.get_scale_center / get_transform, written out again
    scale = (x2 - x1 + y2 - y1) / 220.0
    centre = (x2 - (x2 - x1) / 2, y2 - (y2 - y1) / 2)
    h = 200 * scale
    mat = np.array(
        [[224 / h, 0, 224 * (-centre[0] / h + 0.5)], [0, 224 / h, 224 * (-centre[1] / h + 0.5)]]
    )
    module = cv2.warpAffine(image, mat, (224, 224))
    diff = np.abs(module.astype(int) - batch[0][0].astype(int)).max()
    assert diff == 0


def test_another_architecture_is_refused_in_one_line(tmp_path, standin):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        g = f.create_group("dense")
        g.attrs["weight_names"] = np.array([b"dense/kernel:0"])
        g.create_dataset("dense/kernel:0", data=np.zeros((3, 3), np.float32))
    with pytest.raises(WeightsError, match=rf"^{other}: not RBDM's MobileNetV2 weights") as err:
        load_rbdm(other)
    assert "\n" not in str(err.value)


def test_a_truncated_file_is_refused_in_one_line(tmp_path, standin):
    cut = tmp_path / "cut.h5"
    cut.write_bytes(standin.read_bytes()[:5000])
    with pytest.raises(WeightsError, match=rf"^{cut}: not a readable HDF5") as err:
        load_rbdm(cut)
    assert "\n" not in str(err.value)


def test_a_missing_layer_and_nan_are_refused(tmp_path):
    path = write_standin_h5(tmp_path / "m.h5")
    with h5py.File(path, "a") as f:
        names = [n for n in f.attrs["layer_names"] if n != b"block_3_project"]
        f.attrs["layer_names"] = np.array(names)
    with pytest.raises(WeightsError, match=r"missing layers block_3_project$"):
        read_keras_h5(path)
    path = write_standin_h5(tmp_path / "n.h5")
    with h5py.File(path, "a") as f:
        f["Conv_1/Conv_1/kernel:0"][0, 0, 0, 0] = np.nan
    with pytest.raises(WeightsError, match=r"Conv_1/kernel:0 holds NaN"):
        read_keras_h5(path)


def test_other_class_counts_are_refused(standin):
    with pytest.raises(WeightsError, match=r"^--model rbdm has 8 expression classes, not 5$"):
        load_rbdm(standin, 5)


def test_landmarks_are_a_usage_error_with_rbdm(tmp_path, standin):
    result = CliRunner().invoke(cli, ["analyze", str(tmp_path), "--model", "rbdm", "--landmarks"])
    assert result.exit_code == 2 and "--landmarks: --model rbdm gives no landmarks" in result.output
