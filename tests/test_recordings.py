"""What camera and phone files bring that the generated MP4s do not, made here with ffmpeg from
the generated sample: rotation metadata, a header frame count that decoding does not reach
(damaged last packets), 10-bit HEVC, a 24000/1001 fps QuickTime file, an audio-only file.
Every frame's time is checked against ffprobe's."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_cli

from emonet_cli.demo import make_sample
from emonet_cli.formats.streams import read_stream
from emonet_cli.media.video import MediaReader
from emonet_cli.outputs.results import read_results_csv

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="needs ffmpeg and ffprobe (Debian: apt-get install ffmpeg)",
)
MODEL = ("--precision", "fp32", "--device", "cpu", "--offline", "--quiet")


def ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *map(str, args)], check=True)


def ffprobe_times(video: Path) -> list[float]:
    """The presentation time of every frame ffprobe decodes, from the first."""
    out = subprocess.run(
        ["ffprobe", "-v", "quiet", "-select_streams", "v:0", "-show_entries",
         "frame=pts_time", "-of", "csv=p=0", str(video)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    times = [float(line.strip(",")) for line in out.split()]
    return [round(t - times[0], 6) for t in times]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return make_sample(tmp_path_factory.mktemp("rec"), width=192, height=144, fps=10.0,
                       seconds=1.0, gap=None)  # fmt: skip


def analyze(video: Path, out: Path, weights: Path, *extra) -> tuple[dict, dict]:
    run_cli("analyze", video, *extra, "--weights", weights, *MODEL, "-o", out)
    summary = json.loads((out / f"{video.stem}.emonet.json").read_text())
    return summary, read_results_csv(out / f"{video.stem}.csv")


def test_a_phone_recording_is_turned_upright_as_players_show_it(sample, tmp_path, standin_weights):
    # As a phone stores it: the frames turned a quarter clockwise, the display matrix saying
    # to turn them back.
    stored = tmp_path / "stored.mp4"
    ffmpeg("-i", sample.video, "-vf", "transpose=1", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           stored)  # fmt: skip
    video = tmp_path / "portrait.mp4"
    ffmpeg("-i", stored, "-c", "copy", "-metadata:s:v:0", "rotate=90", video)
    ffmpeg("-i", video, "-frames:v", "1", tmp_path / "shown.png")  # as a player applies it
    shown = cv2.imread(str(tmp_path / "shown.png"))
    with MediaReader(video) as reader:
        first = next(iter(reader))
        assert (reader.info.width, reader.info.height) == (192, 144)
        assert reader.info.rotated_clockwise == 270
    np.testing.assert_array_equal(first.bgr, shown)

    summary, columns = analyze(video, tmp_path / "out", standin_weights[8], "--detect")
    assert summary["media"]["rotated_clockwise"] == 270
    assert (summary["media"]["width"], summary["media"]["height"]) == (192, 144)
    assert summary["frames"] == len(columns["frame"]) == 10
    # The face is found upright, as in the sample it was made from.
    plain, _ = analyze(sample.video, tmp_path / "plain", standin_weights[8], "--detect")
    assert "rotated_clockwise" not in plain["media"]
    assert summary["frames_with_face"] == plain["frames_with_face"] >= 9
    # DISCOVER's box stream of the upright frames: the same boxes (normalised) as the sample's.
    boxes = read_stream(tmp_path / "out" / "portrait.stream").data
    plain_boxes = read_stream(tmp_path / "plain" / f"{sample.video.stem}.stream").data
    np.testing.assert_allclose(boxes[:, :4], plain_boxes[:, :4], atol=0.03)  # x1 y1 x2 y2


def test_damaged_last_packets_keep_the_frames_before_and_warn(tmp_path, standin_weights):
    whole = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "1.5", "-c:v", "libx264",
           "-g", "5", "-pix_fmt", "yuv420p", "-movflags", "+faststart", whole)  # fmt: skip
    damaged = tmp_path / "damaged.mp4"
    data = whole.read_bytes()
    damaged.write_bytes(data[: int(len(data) * 0.6)])  # the header still announces 15 frames

    summary, columns = analyze(damaged, tmp_path / "out", standin_weights[8], "--full-frame")
    decoded = summary["frames"]
    assert 1 <= decoded < 15 and len(columns["frame"]) == decoded
    assert summary["warnings"] == [
        f"{damaged}: the container announces 15 frames, {decoded} were decoded"
    ]
    np.testing.assert_allclose(columns["time"], ffprobe_times(damaged)[:decoded], atol=1e-6)


@pytest.mark.parametrize(
    "name, codec",
    [
        ("hevc10.mp4", ("-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-x265-params",
                        "log-level=error")),
        ("ntsc.mov", ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-r", "24000/1001")),
    ],
)  # fmt: skip
def test_camera_formats_give_one_row_per_frame_at_ffprobes_times(
    name, codec, sample, tmp_path, standin_weights
):
    video = tmp_path / name
    ffmpeg("-i", sample.video, *codec, video)
    summary, columns = analyze(video, tmp_path / "out", standin_weights[8], "--detect")
    times = ffprobe_times(video)
    assert summary["frames"] == len(columns["frame"]) == len(times)
    np.testing.assert_allclose(columns["time"], times, atol=1e-6)
    assert summary["warnings"] == []
    assert summary["frames_with_face"] >= 0.9 * len(times)  # re-encoding may cost a detection


def test_an_audio_only_file_is_one_line(tmp_path, standin_weights):
    audio = tmp_path / "speech.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", audio)
    proc = run_cli("analyze", audio, "--full-frame", "--weights", standin_weights[8], *MODEL,
                   check=False)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"emonet: error: {audio}: not a readable video"
