"""`make demo`'s sample: a moving, zooming astronaut and a BlazeFace-format box stream that
follows the face, with one second without a face."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from emonet_cli.demo import ASTRONAUT_FACE_BOX, main, make_sample
from emonet_cli.faces import read_boxes
from emonet_cli.formats.streams import read_stream
from emonet_cli.media.video import MediaReader


def test_sample_boxes_follow_the_face(tmp_path):
    sample = make_sample(tmp_path, width=320, height=240, fps=10, seconds=2.0, gap=(1.0, 1.5))
    stream = read_stream(sample.boxes)
    assert (stream.sr, stream.data.shape) == (10, (20, 5))
    boxes = read_boxes(sample.boxes, frame_size=(320, 240))
    np.testing.assert_array_equal(boxes.conf > 0, sample.face_frames)
    # In the gap BlazeFace repeats the last good box with confidence 0.
    np.testing.assert_array_equal(boxes.boxes[10:15], np.repeat(boxes.boxes[9:10], 5, axis=0))
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE_BOX
    aspect = (fx2 - fx1) / (fy2 - fy1)
    sizes = boxes.boxes[:, 2:] - boxes.boxes[:, :2]
    np.testing.assert_allclose(sizes[:, 0] / sizes[:, 1], aspect, rtol=1e-4)
    assert len(np.unique(sizes[sample.face_frames, 0].round(3))) > 5  # it zooms
    for frame in MediaReader(sample.video):
        x1, y1, x2, y2 = boxes.boxes[frame.index].round().astype(int)
        inside = frame.image[max(y1, 0) : y2, max(x1, 0) : x2].std()
        # A face region is textured; the background of the faceless second is flat.
        assert (inside > 20) == sample.face_frames[frame.index]


def test_demo_without_weights_still_makes_the_sample_and_says_what_to_do(tmp_path):
    env = {**os.environ, "EMONET_CACHE": str(tmp_path / "cache")}
    env.pop("EMONET_WEIGHTS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "emonet_cli.demo", str(tmp_path / "demo"), "--offline"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (tmp_path / "demo" / "astronaut.mp4").is_file()
    assert (tmp_path / "demo" / "generated-boxes" / "astronaut.stream").is_file()
    assert "emonet_8.pth" in proc.stderr and "once the weights are in place" in proc.stderr


def test_demo_help_describes_itself_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("Usage: python -m emonet_cli.demo [FOLDER]")
    assert list(tmp_path.iterdir()) == []
