"""The model is the published EmoNet: golden outputs of the published code on the stand-in
checkpoint, for both class counts, one image at a time and as a batch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from standin import DATA, manifest_rows, parse_shape

from emonet_cli.media.images import read_image
from emonet_cli.models.emonet.checkpoint import build_model, load_state_dict
from emonet_cli.models.emonet.inference import Predictor, decode_landmarks
from emonet_cli.models.emonet.model import EmoNet
from emonet_cli.models.predictions import softmax

GOLDEN = json.loads((DATA / "golden.json").read_text())
TOLERANCE = 1e-4
INPUT_NAMES = ("astronaut_face", "noise_pcg64_7")


def golden_inputs() -> torch.Tensor:
    """The two inputs of golden.json as a (2, 3, 256, 256) float batch in [0, 1]."""
    astronaut = read_image(DATA / "astronaut_face.png").astype(np.float32) / 255.0
    noise = np.random.Generator(np.random.PCG64(7)).random((3, 256, 256)).astype(np.float32)
    return torch.stack([torch.from_numpy(astronaut).permute(2, 0, 1), torch.from_numpy(noise)])


@pytest.fixture(scope="module", params=[5, 8])
def model_and_golden(request, standin_weights):
    nclass = request.param
    model = build_model(load_state_dict(standin_weights[nclass]), nclass)
    return model, GOLDEN["models"][f"emonet_{nclass}"]


def assert_matches_golden(out, index: int, golden: dict) -> None:
    close = {"rtol": 0, "atol": TOLERANCE}
    np.testing.assert_allclose(out.expression[index], golden["expression_logits"], **close)
    np.testing.assert_allclose(out.valence[index].item(), golden["valence"], **close)
    np.testing.assert_allclose(out.arousal[index].item(), golden["arousal"], **close)
    embedding = out.embedding[index].double()
    np.testing.assert_allclose(embedding[:8], golden["embedding_first8"], **close)
    # Sums over many values accumulate float32 rounding: compare them relatively.
    np.testing.assert_allclose(embedding.sum().item(), golden["embedding_sum"], rtol=TOLERANCE)
    np.testing.assert_allclose(embedding.norm().item(), golden["embedding_l2"], rtol=TOLERANCE)
    heatmap = out.heatmap[index].double()
    np.testing.assert_allclose(heatmap.sum().item(), golden["heatmap_sum"], rtol=TOLERANCE)
    np.testing.assert_allclose(
        heatmap.abs().sum().item(), golden["heatmap_abs_sum"], rtol=TOLERANCE
    )
    flat = heatmap.flatten(1)
    np.testing.assert_array_equal(flat.argmax(dim=1).numpy(), golden["heatmap_argmax_flat"])
    np.testing.assert_allclose(flat.max(dim=1).values.numpy(), golden["heatmap_max"], **close)


def test_state_dict_layout_is_the_published_one():
    for nclass in (5, 8):
        expected = {row["key"]: parse_shape(row["shape"]) for row in manifest_rows(nclass)}
        ours = {key: tuple(value.shape) for key, value in EmoNet(nclass).state_dict().items()}
        assert ours == expected


@pytest.mark.parametrize("name", INPUT_NAMES)
def test_single_image_matches_published_outputs(model_and_golden, name):
    model, golden = model_and_golden
    index = INPUT_NAMES.index(name)
    with torch.inference_mode():
        out = model(golden_inputs()[index : index + 1])
    assert out.heatmap.shape == (1, 68, 64, 64)
    assert out.embedding.shape == (1, 256)
    assert_matches_golden(out, 0, golden[name])


def test_batch_matches_published_outputs(model_and_golden):
    model, golden = model_and_golden
    with torch.inference_mode():
        out = model(golden_inputs())
    for index, name in enumerate(INPUT_NAMES):
        assert_matches_golden(out, index, golden[name])


def test_predictor_fp32_matches_published_outputs(model_and_golden):
    """The Predictor path (uint8 crops, channels-last) gives the published numbers too."""
    model, golden = model_and_golden
    crop = read_image(DATA / "astronaut_face.png")
    predictions = Predictor(model, "cpu", "fp32")(crop[None])
    reference = golden["astronaut_face"]
    np.testing.assert_allclose(
        predictions.expression[0], reference["expression_logits"], atol=TOLERANCE
    )
    np.testing.assert_allclose(predictions.valence[0], reference["valence"], atol=TOLERANCE)
    np.testing.assert_allclose(predictions.arousal[0], reference["arousal"], atol=TOLERANCE)
    # Landmarks are the heatmap maxima, at the centre of their 4x4 block of crop pixels.
    argmax = np.asarray(reference["heatmap_argmax_flat"])
    expected = np.stack([argmax % 64, argmax // 64], axis=1) * 4 + 1.5
    np.testing.assert_array_equal(predictions.landmarks[0], expected)


def test_bf16_stays_within_002_of_fp32(model_and_golden):
    """The precision policy's promise: bf16 (used by default on CPUs with fast bf16) keeps
    valence, arousal and every class probability within 0.02 of float32."""
    model, _ = model_and_golden
    crops = (golden_inputs().permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    fp32 = Predictor(model, "cpu", "fp32")(crops)
    bf16 = Predictor(model, "cpu", "bf16")(crops)
    for name in ("valence", "arousal"):
        assert np.abs(getattr(fp32, name) - getattr(bf16, name)).max() <= 0.02
    assert np.abs(fp32.probabilities - bf16.probabilities).max() <= 0.02
    assert np.abs(fp32.probabilities - softmax(fp32.expression)).max() < 1e-6


def test_decode_landmarks_finds_each_maximum():
    heatmap = torch.zeros(2, 68, 64, 64)
    rng = np.random.default_rng(3)
    positions = rng.integers(0, 64, size=(2, 68, 2))
    for b in range(2):
        for k in range(68):
            heatmap[b, k, positions[b, k, 1], positions[b, k, 0]] = 1.0
    np.testing.assert_array_equal(decode_landmarks(heatmap).numpy(), positions * 4 + 1.5)
