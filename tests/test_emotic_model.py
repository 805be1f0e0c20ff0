"""EMOTIC model core: the published files read safely, the network against an independent
functional forward, the converter, the metrics and the preprocessing.

The published files cannot be downloaded in tests, so stand-ins are pickled the same way:
whole model objects saved with torch.save, naming the globals the published files name
(torchvision.models.resnet.BasicBlock, __main__.Emotic or emotic.Emotic, torch.nn modules).
Neither torchvision nor the reference's `emotic` module is importable here, so throwaway
classes are registered under those module paths while the stand-ins are written.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from standin import EMOTIC_SEED as SEED
from standin import Emotic, ResNet, fill, published_names, write_published
from torch import nn

from emonet_cli.errors import InputError, WeightsError
from emonet_cli.models.emotic import metrics, preprocess, safeload, unpickle
from emonet_cli.models.emotic.network import EmoticNet

PACKAGE = Path(safeload.__file__).resolve().parent


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("emotic") / "published"
    return folder, write_published(folder)


@pytest.fixture(scope="module")
def loaded(published) -> EmoticNet:
    return safeload.load_emotic(published[0])


@pytest.fixture(scope="module")
def outputs(loaded) -> tuple[torch.Tensor, ...]:
    """(context, body, scores, vad) of the loaded stand-in on batch()."""
    context, body = batch()
    with torch.no_grad():
        return (context, body, *loaded(context, body))


def linked_copy(folder: Path, to: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """`to` holding the published files of `folder` (hard links: no copying) but `leave_out`."""
    to.mkdir()
    for name in safeload.PUBLISHED_FILES:
        if name not in leave_out:
            os.link(folder / name, to / name)
    return to


# --- an independent forward: torch.nn.functional on the raw tensors -------------------------


def ref_bn(x, p, name):
    return F.batch_norm(
        x, p[f"{name}.running_mean"], p[f"{name}.running_var"], p[f"{name}.weight"],
        p[f"{name}.bias"], training=False, eps=1e-5,
    )  # fmt: skip


def ref_block(x, p, prefix, stride):
    out = F.relu(
        ref_bn(F.conv2d(x, p[prefix + "conv1.weight"], None, stride, 1), p, prefix + "bn1")
    )
    out = ref_bn(F.conv2d(out, p[prefix + "conv2.weight"], None, 1, 1), p, prefix + "bn2")
    if prefix + "downsample.0.weight" in p:
        x = ref_bn(
            F.conv2d(x, p[prefix + "downsample.0.weight"], None, stride), p, prefix + "downsample.1"
        )
    return F.relu(out + x)


def ref_resnet(x, p):
    """ResNet-18 features from the Sequential's numbered keys, as the published files hold them."""
    x = F.max_pool2d(F.relu(ref_bn(F.conv2d(x, p["0.weight"], None, 2, 3), p, "1")), 3, 2, 1)
    for index, stride in ((4, 1), (5, 2), (6, 2), (7, 2)):
        x = ref_block(ref_block(x, p, f"{index}.0.", stride), p, f"{index}.1.", 1)
    return x.mean(dim=(2, 3))


def ref_emotic(context, body, raw):
    p = raw["fusion"]
    fused = torch.cat((ref_resnet(context, raw["context"]), ref_resnet(body, raw["body"])), 1)
    hidden = F.relu(ref_bn(F.linear(fused, p["fc1.weight"], p["fc1.bias"]), p, "bn1"))
    scores = F.linear(hidden, p["fc_cat.weight"], p["fc_cat.bias"])
    return scores, 10.0 * F.linear(hidden, p["fc_cont.weight"], p["fc_cont.bias"])


def scene(height: int = 150, width: int = 200, seed: int = 7) -> np.ndarray:
    """An RGB test picture: gradients and noise, a different one per seed."""
    rng = np.random.Generator(np.random.PCG64(seed))
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) * 127 / (width + height)], -1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def batch(boxes=((40, 20, 120, 140), (10.7, 5.2, 190.9, 90.4))) -> tuple[torch.Tensor, ...]:
    pairs = [preprocess.inputs(scene(seed=i), box) for i, box in enumerate(boxes)]
    return tuple(torch.from_numpy(np.stack(arrays)) for arrays in zip(*pairs))


# --- loading, outputs, conversion -------------------------------------------------------------


def test_published_layout_loads_and_matches_the_functional_reference(published, loaded, outputs):
    _, raw = published
    context, body, scores, vad = outputs
    with torch.no_grad():
        want_scores, want_vad = ref_emotic(context, body, raw)
    assert scores.shape == (2, 26) and vad.shape == (2, 3) and scores.dtype == torch.float32
    assert (scores - want_scores).abs().max() < 1e-4
    assert (vad - want_vad).abs().max() < 1e-4
    assert np.array_equal(loaded.thresholds.numpy(), raw["thresholds"])
    assert not loaded.training
    assert torch.equal(loaded.decide(scores), scores > torch.from_numpy(raw["thresholds"]))


@pytest.mark.filterwarnings("ignore:Couldn't retrieve source code")  # old-format saving
@pytest.mark.parametrize("emotic_module", ["emotic", "__main__"])
def test_fusion_pickled_from_either_module_path_and_old_format(tmp_path, emotic_module):
    fusion = Emotic()
    raw = fill(fusion, np.random.Generator(np.random.PCG64(SEED)))
    # Old torch saved no step counter; eval mode never reads it.
    del fusion.bn1._buffers["num_batches_tracked"]
    with published_names(emotic_module):
        torch.save(fusion, tmp_path / "new.pth")
        torch.save(fusion, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    for name in ("new.pth", "old.pth"):
        state = safeload.read_fusion(tmp_path / name)
        assert state.keys() == raw.keys()
        assert all(torch.equal(state[key], raw[key]) for key in raw)


def test_whole_torchvision_resnet_pickle_reads_without_its_classifier(tmp_path):
    resnet = ResNet()
    fill(resnet, np.random.Generator(np.random.PCG64(SEED)))
    with published_names():
        torch.save(resnet, tmp_path / "context_model.pth")
    state = safeload.read_backbone(tmp_path / "context_model.pth")
    assert not any(key.startswith("fc.") for key in state)
    assert torch.equal(state["layer4.1.bn2.running_var"], resnet.layer4[1].bn2.running_var)


def test_converter_writes_a_weights_only_file_with_identical_outputs(published, outputs, tmp_path):
    out = tmp_path / "emotic.pth"
    sha = safeload.convert_emotic(published[0], out)
    assert sha == hashlib.sha256(out.read_bytes()).hexdigest()
    assert not (tmp_path / "emotic.pth.partial").exists()
    # mmap: the keys without reading the tensors (load_emotic below reads them).
    state = torch.load(out, map_location="cpu", weights_only=True, mmap=True)
    assert state.keys() == EmoticNet().state_dict().keys()
    context, body, *direct = outputs
    with torch.no_grad():
        converted = safeload.load_emotic(out)(context, body)
    assert all(torch.equal(a, b) for a, b in zip(direct, converted))


class SystemPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class ExecPayload(SystemPayload):
    def __reduce__(self):
        return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)


class Gadget(nn.Module):
    """A module of a class no published file names."""


@pytest.mark.parametrize(
    "extra, named",
    [
        (SystemPayload, "posix.system" if os.name == "posix" else "nt.system"),
        (ExecPayload, "__builtin__.exec"),  # protocol 2 names builtins so
        (lambda marker: nn.GELU(), "torch.nn.modules.activation.GELU"),
        (lambda marker: Gadget(), "gadgets.Gadget"),
    ],
)
def test_pickles_naming_anything_else_are_refused_and_never_run(published, tmp_path, extra, named):
    marker = tmp_path / "ran"
    # The payload is live: plain unpickling runs it.
    if isinstance(extra, type):
        pickle.loads(pickle.dumps(extra(marker)))
        assert marker.exists()
        marker.unlink()
    folder = linked_copy(published[0], tmp_path / "published", leave_out=("model_emotic1.pth",))
    fusion = Emotic()
    fusion.extra = extra(marker)
    with published_names(), pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "gadgets", types.ModuleType("gadgets"))
        mp.setattr(sys.modules["gadgets"], "Gadget", Gadget, False)
        mp.setattr(Gadget, "__module__", "gadgets")
        torch.save(fusion, folder / "model_emotic1.pth")
    with pytest.raises(WeightsError) as refused:
        safeload.load_emotic(folder)
    message = str(refused.value)
    assert "\n" not in message and "model_emotic1.pth" in message and named in message
    assert not marker.exists()


def test_setting_state_on_an_allowed_callable_is_refused():
    # BUILD onto the OrderedDict class: the rewiring a pickle could try with allowed names.
    stream = b"\x80\x02ccollections\nOrderedDict\n}X\x03\x00\x00\x00keyK\x01sb."
    with pytest.raises(unpickle.RefusedPickle, match="sets the state of a type"):
        unpickle.SafeUnpickler(io.BytesIO(stream)).load()


def test_missing_corrupt_and_pickled_files_are_refused_in_one_line(published, tmp_path):
    folder, raw = published
    cases = {}
    lacking = ("model_context1.pth", "val_thresholds.npy")
    cases["lacks model_context1.pth, val_thresholds.npy"] = linked_copy(
        folder, tmp_path / "partial", leave_out=lacking
    )
    broken = linked_copy(folder, tmp_path / "broken", leave_out=("model_context1.pth",))
    (broken / "model_context1.pth").write_bytes(b"not a zip")
    cases["model_context1.pth is not a PyTorch file"] = broken
    damaged = linked_copy(folder, tmp_path / "damaged", leave_out=("model_emotic1.pth",))
    fusion = Emotic()
    fill(fusion, np.random.Generator(np.random.PCG64(SEED)))
    with torch.no_grad():
        fusion.fc_cat.weight[3, 7] = float("nan")
    with published_names():
        torch.save(fusion, damaged / "model_emotic1.pth")
    cases["fc_cat.weight holds NaN"] = damaged
    cases["refusing to load"] = folder / "model_emotic1.pth"  # a published file, given alone
    for expected, path in cases.items():
        with pytest.raises(WeightsError) as refused:
            safeload.load_emotic(path)
        assert "\n" not in str(refused.value) and expected in str(refused.value)

    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([object()] * 26, dtype=object), allow_pickle=True)
    with pytest.raises(WeightsError, match="not a plain .npy array"):
        safeload.read_thresholds(objects)
    np.save(tmp_path / "short.npy", raw["thresholds"][:25])
    with pytest.raises(WeightsError, match="25 thresholds, not 26"):
        safeload.read_thresholds(tmp_path / "short.npy")


# --- metrics ----------------------------------------------------------------------------------


def brute_force_ap(labels: np.ndarray, scores: np.ndarray) -> float:
    """The definition: for each positive, the precision among all samples scoring at least as
    high; averaged over the positives."""
    positives = np.flatnonzero(labels == 1)
    if positives.size == 0:
        return 0.0
    precisions = [labels[scores >= scores[i]].mean() for i in positives]
    return float(np.mean(precisions))


def test_average_precision_matches_the_definition_and_sklearn():
    # sklearn's documented example of average_precision_score.
    ap = metrics.average_precision(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert ap == pytest.approx(0.8333333333)
    rng = np.random.Generator(np.random.PCG64(5))
    labels = (rng.random((60, 26)) < 0.25).astype(np.float64)
    labels[:, 3] = 0  # a category without positives
    scores = np.round(rng.random((60, 26)) + 0.3 * labels, 1)  # ties in every column
    per_category, mean = metrics.mean_average_precision(labels, scores)
    want = np.array([brute_force_ap(labels[:, k], scores[:, k]) for k in range(26)])
    assert np.allclose(per_category, want, atol=1e-12, rtol=0)
    assert mean == pytest.approx(want.mean(), abs=1e-12) and per_category[3] == 0.0


def test_vad_error_and_threshold_rule():
    per_dimension, mean = metrics.vad_mean_absolute_error(
        np.array([[5.0, 6.0, 7.0], [1.0, 1.0, 1.0]]), np.array([[4.0, 6.0, 9.0], [2.0, 1.0, 1.0]])
    )
    assert np.allclose(per_dimension, [1.0, 0.0, 1.0]) and mean == pytest.approx(2 / 3)
    decided = metrics.decide_categories(np.array([0.2, 0.3, 0.4]), np.array([0.3, 0.3, 0.3]))
    assert decided.tolist() == [False, False, True]  # strictly greater, as torch.gt
    assert len(metrics.CATEGORIES) == 26 and metrics.CATEGORIES[9] == "Doubt/Confusion"


# --- preprocessing ----------------------------------------------------------------------------


def test_inputs_shapes_normalisation_and_crop():
    flat = np.full((90, 120, 3), (200, 100, 50), dtype=np.uint8)
    context, body = preprocess.inputs(flat, (10, 20, 60, 80))
    assert context.shape == (3, 224, 224) and body.shape == (3, 128, 128)
    assert context.dtype == body.dtype == np.float32
    rgb = np.array([200, 100, 50]) / 255
    for array, mean, std in ((context, preprocess.CONTEXT_MEAN, preprocess.CONTEXT_STD),
                             (body, preprocess.BODY_MEAN, preprocess.BODY_STD)):  # fmt: skip
        assert np.allclose(array, ((rgb - mean) / std)[:, None, None], atol=1e-6)

    image = scene()
    body = preprocess.body_input(image, (40.6, 20.2, 120.9, 140.0))
    crop = preprocess.cv2.resize(image[20:140, 40:120], (128, 128)).astype(np.float64) / 255
    want = ((crop - preprocess.BODY_MEAN) / preprocess.BODY_STD).transpose(2, 0, 1)
    assert np.allclose(body, want, atol=1e-5)
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    assert np.array_equal(preprocess.context_input(bgr, bgr=True), preprocess.context_input(image))
    # A box reaching past the frame is clipped to it; one outside it is refused.
    assert np.array_equal(
        preprocess.body_input(image, (-30, -5, 60, 400)),
        preprocess.body_input(image, (0, 0, 60, 150)),
    )
    with pytest.raises(InputError, match="holds no pixel"):
        preprocess.body_input(image, (210, 10, 260, 50))


def test_face_box_grows_to_an_upper_body_clipped_to_the_frame():
    # A 40x50 face in a 640x480 frame: 120 wide, from 25 above its top to 200 below it.
    assert preprocess.face_to_body_box((300, 100, 340, 150), 640, 480) == (260, 75, 380, 300)
    assert preprocess.face_to_body_box((5, 10, 45, 60), 640, 480) == (0, 0, 85, 210)
    assert preprocess.face_to_body_box((600, 400, 640, 450), 640, 480) == (560, 375, 640, 480)
    with pytest.raises(InputError):
        preprocess.face_to_body_box((10, 10, 10, 20), 640, 480)


def test_vad_scales():
    assert np.allclose(preprocess.emotic_to_signed([1.0, 5.5, 10.0]), [-1.0, 0.0, 1.0])
    assert np.allclose(preprocess.signed_to_emotic(preprocess.emotic_to_signed(3.2)), 3.2)


@pytest.mark.parametrize("module", ["preprocess.py", "metrics.py"])
def test_modules_that_never_run_the_network_import_no_torch(module):
    tree = ast.parse((PACKAGE / module).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names]  # fmt: skip
    imported += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name and name.split(".")[0] == "torch"]
