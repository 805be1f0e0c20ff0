"""Faces without a box file, end to end through the real CLI: `emonet detect` writes DISCOVER's
box streams, and `emonet analyze` without box options detects on the fly and gives the same
results as analysing the stream `emonet detect` wrote."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from cli_helpers import run_cli

from emonet_cli.demo import make_sample
from emonet_cli.faces import read_boxes
from emonet_cli.faces.detection.blazeface import WEIGHTS_SHA256
from emonet_cli.outputs.results import read_results

WIDTH, HEIGHT, FPS = 320, 240, 10.0
MODEL = ("--precision", "fp32", "--device", "cpu", "--batch-size", "3")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 1.2 s clip whose face leaves at 0.4 s and comes back at 0.8 s; the generated truth
    boxes are kept away from the video, so that nothing sits beside it."""
    folder = tmp_path_factory.mktemp("clip")
    sample = make_sample(
        folder / "in", width=WIDTH, height=HEIGHT, fps=FPS, seconds=1.2, gap=(0.4, 0.8)
    )
    truth = folder / "truth.stream"
    shutil.move(sample.boxes, truth)
    shutil.move(f"{sample.boxes}~", f"{truth}~")
    return sample, truth


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


def test_detect_finds_the_face_where_it_is_shown(clip, tmp_path):
    sample, truth = clip
    proc = run_cli("detect", sample.video, "-o", tmp_path, "--json", "--device", "cpu")
    report = json.loads(proc.stdout)
    assert report["status"] == "ok" and report["stream"] == str(tmp_path / "astronaut.stream")
    assert report["frames_with_face"] == int(sample.face_frames.sum())
    found = read_boxes(tmp_path / "astronaut.stream", (WIDTH, HEIGHT))
    expected = read_boxes(truth, (WIDTH, HEIGHT))
    assert len(found) == sample.frames
    for frame in range(sample.frames):
        if sample.face_frames[frame]:
            assert found.conf[frame] >= 0.5
            assert iou(found.boxes[frame], expected.boxes[frame]) >= 0.5, frame
        else:  # repeat_last: the last face's box at confidence 0
            assert found.conf[frame] == 0.0
            np.testing.assert_array_equal(found.boxes[frame], found.boxes[frame - 1])
    assert (tmp_path / "astronaut.keypoints.stream").is_file()

    again = run_cli("detect", sample.video, "-o", tmp_path, "--skip-existing")
    assert again.stdout.startswith("skipped")


def test_analyze_without_boxes_equals_analyze_of_the_detected_stream(
    clip, tmp_path, standin_weights
):
    sample, _ = clip
    weights = ("--weights", standin_weights[8])
    detected, from_stream = tmp_path / "detected", tmp_path / "stream"
    run_cli("detect", sample.video, "-o", tmp_path / "boxes", "--device", "cpu")
    run_cli("analyze", sample.video, "-o", detected, *weights, *MODEL)
    run_cli(
        "analyze", sample.video, "--bbox", tmp_path / "boxes" / "astronaut.stream",
        "-o", from_stream, *weights, *MODEL,
    )  # fmt: skip

    assert (detected / "astronaut.csv").read_bytes() == (from_stream / "astronaut.csv").read_bytes()
    for name in ("astronaut.stream~", "astronaut.keypoints.stream~"):
        assert (detected / name).read_bytes() == (tmp_path / "boxes" / name).read_bytes()
    results = read_results(detected / "astronaut.csv")
    np.testing.assert_array_equal(results.face, sample.face_frames)

    summary = json.loads((detected / "astronaut.emonet.json").read_text())
    assert summary["boxes"] == "detected"
    assert summary["detector"]["weights_sha256"] == WEIGHTS_SHA256
    assert summary["detector"]["min_score"] == 0.5 and summary["detector"]["repeat_last"]
    assert str(detected / "astronaut.stream") in summary["outputs"]


def test_a_box_file_beside_the_input_is_used_unless_detect_is_given(
    clip, tmp_path, standin_weights
):
    sample, _ = clip
    video = tmp_path / "clip.mp4"
    shutil.copy(sample.video, video)
    # A stream beside the video that claims no face anywhere.
    (tmp_path / "clip.csv").write_text("frame,x1,y1,x2,y2,conf\n0,10,10,60,60,0.1\n")
    weights = ("--weights", standin_weights[8], *MODEL)
    run_cli("analyze", video, "-o", tmp_path / "beside", *weights)
    assert not read_results(tmp_path / "beside" / "clip.csv").face.any()
    run_cli("analyze", video, "--detect", "-o", tmp_path / "forced", *weights)
    assert read_results(tmp_path / "forced" / "clip.csv").face.sum() == sample.face_frames.sum()

    clash = run_cli("analyze", video, "--detect", "--full-frame", *weights, check=False)
    assert clash.returncode == 2 and "only one of" in clash.stderr
