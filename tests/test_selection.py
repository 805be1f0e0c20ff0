"""--start / --end / --sample-rate: which frames are analysed (checked against a full decode,
for MPEG-4, H.264 with B-frames and a variable frame rate), how the outputs lay them out on
time series that start at t = 0, and the errors a user can cause."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from cli_helpers import run_cli
from test_video import FFMPEG, ffmpeg, write_video

from emonet_cli.constants import EMBEDDING_SIZE, N_LANDMARKS
from emonet_cli.demo import make_sample
from emonet_cli.errors import InputError
from emonet_cli.formats.annotations import read_annotation
from emonet_cli.formats.streams import read_stream
from emonet_cli.media.frames import MediaInfo
from emonet_cli.media.selection import TIME_EPSILON, FrameSelection, Timeline
from emonet_cli.media.video import MediaReader
from emonet_cli.outputs.context import close_all
from emonet_cli.outputs.results import ResultBatch, read_results_csv
from emonet_cli.outputs.writers import OutputOptions, WriterContext, open_writers

assert FFMPEG  # the encoder of the H.264 and variable-rate clips


def numbered_frames(count: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Frames that differ from each other everywhere (noise), so that a frame off by one is seen."""
    rng = np.random.default_rng(5)
    return [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict:
    """A 25 fps MPEG-4 clip of 40 frames and its H.264 copy with B-frames."""
    folder = tmp_path_factory.mktemp("clips")
    mpeg4 = write_video(folder / "noise.mp4", numbered_frames(40), fps=25)
    h264 = folder / "noise_h264.mp4"
    ffmpeg("-i", mpeg4, "-c:v", "libx264", "-bf", "3", "-g", "12", "-pix_fmt", "yuv444p", h264)
    return {"mpeg4": mpeg4, "h264": h264}


def expected_indices(times: list[float], selection: FrameSelection) -> list[int]:
    """The documented rule, straight from the frame times of a full decode: start <= t < end,
    and with a rate the first frame at or after each k / rate."""
    start, end, rate = selection.start, selection.end, selection.sample_rate
    inside = [
        i
        for i, t in enumerate(times)
        if t >= start - TIME_EPSILON and (end is None or t < end - TIME_EPSILON)
    ]
    if rate is None:
        return inside
    picked = []
    k = 0
    while k / rate < (end if end is not None else times[-1] + 1):
        if k / rate >= start - TIME_EPSILON:
            at_or_after = [i for i in inside if times[i] >= k / rate - TIME_EPSILON]
            if at_or_after and at_or_after[0] not in picked:
                picked.append(at_or_after[0])
        k += 1
    return picked


SELECTIONS = [
    FrameSelection(start=0.5, end=1.3),
    FrameSelection(sample_rate=5),
    FrameSelection(sample_rate=10),  # not a divisor of 25: the frame at or after each 0.1 s
    FrameSelection(start=0.52, end=1.5, sample_rate=7),
    FrameSelection(sample_rate=25),  # every frame
]


@pytest.mark.parametrize("codec", ["mpeg4", "h264"])
def test_selected_frames_are_those_of_a_full_decode(clips, codec):
    with MediaReader(clips[codec]) as reader:
        full = [(f.index, f.time, f.image) for f in reader]
    assert [index for index, _, _ in full] == list(range(40))
    times = [time for _, time, _ in full]
    for selection in SELECTIONS:
        with MediaReader(clips[codec], selection) as reader:
            picked = list(reader)
        wanted = expected_indices(times, selection)
        assert [f.index for f in picked] == wanted, selection
        assert len(wanted) > 3
        for frame in picked:
            index, time, image = full[frame.index]
            assert frame.time == time
            np.testing.assert_array_equal(frame.image, image)  # the same pixels as read()
            np.testing.assert_array_equal(frame.bgr, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def test_a_variable_frame_rate_follows_the_timestamps(tmp_path):
    durations = [0.04, 0.04, 0.2, 0.04, 0.12, 0.04]
    lines = []
    for i, duration in enumerate(durations):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), numbered_frames(6)[i])
        lines += [f"file 'f{i}.png'", f"duration {duration}"]
    lines.append(f"file 'f{len(durations) - 1}.png'")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    video = tmp_path / "vfr.mp4"
    ffmpeg("-f", "concat", "-safe", "0", "-i", tmp_path / "list.txt", "-fps_mode", "vfr",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", video)  # fmt: skip
    # Frames at 0, 0.04, 0.08, 0.28, 0.32, 0.44: at 10 Hz the frame at 0.28 stands for 0.1
    # and 0.2 (the first at or after each), 0.32 for 0.3, 0.44 for 0.4.
    selection = FrameSelection(sample_rate=10)
    picked = list(MediaReader(video, selection))
    assert [(f.index, f.time) for f in picked][:4] == [(0, 0.0), (3, 0.28), (4, 0.32), (5, 0.44)]
    timeline = Timeline(selection)
    frames = np.array([f.index for f in picked[:4]])
    times = np.array([f.time for f in picked[:4]])
    np.testing.assert_array_equal(timeline.rows(frames, times), [0, 1, 1, 2, 3])


def test_selections_that_do_not_fit_the_video_are_one_line(clips):
    with pytest.raises(
        InputError, match=r"noise.mp4: --sample-rate 30 is above .* \(25 frames/s\)"
    ):
        MediaReader(clips["mpeg4"], FrameSelection(sample_rate=30))
    MediaReader(clips["mpeg4"], FrameSelection(sample_rate=25.0004)).close()  # rounding
    with pytest.raises(InputError, match=r"--start 9 s is past the end of the video \(1.600 s\)"):
        MediaReader(clips["mpeg4"], FrameSelection(start=9))
    # Past the last frame but within the container's duration: found when decoding.
    with pytest.raises(InputError, match="no frame at or after --start 1.59 s: .* at 1.560 s"):
        list(MediaReader(clips["mpeg4"], FrameSelection(start=1.59)))
    with pytest.raises(InputError, match="no frame from --start 0.41 s to before --end 0.43 s"):
        list(MediaReader(clips["mpeg4"], FrameSelection(start=0.41, end=0.43)))
    for bad in ({"start": -1}, {"start": 2, "end": 2}, {"sample_rate": 0}, {"start": math.nan}):
        with pytest.raises(ValueError):
            FrameSelection(**bad)


def batch_of(frames: list[int], fps: float, n_landmarks: int = N_LANDMARKS) -> ResultBatch:
    n = len(frames)
    values = np.arange(1, n + 1, dtype=np.float32) / 10
    return ResultBatch(
        frame=np.asarray(frames),
        time=np.asarray(frames) / fps,
        face=np.ones(n, dtype=bool),
        face_conf=np.full(n, 0.9, dtype=np.float32),
        expression=np.zeros(n, dtype=np.int64),
        probabilities=np.tile(np.eye(8, dtype=np.float32)[0], (n, 1)),
        valence=values,
        arousal=-values,
        landmarks=np.repeat(values, n_landmarks * 2).reshape(n, n_landmarks, 2),
        embedding=np.repeat(values, EMBEDDING_SIZE).reshape(n, EMBEDDING_SIZE),
    )


@pytest.mark.parametrize(
    "selection, frames, sr, samples",
    [
        # --start alone: the video's rate, no face before the first analysed frame.
        (FrameSelection(start=0.3, end=0.8), [3, 4, 5, 6, 7], 10.0, [-1, -1, -1, 0, 1, 2, 3, 4]),
        # A rate: sample k at k / 2.5 s; k = 0 and 1 lie before --start.
        (FrameSelection(start=0.7, sample_rate=2.5), [8, 12, 16], 2.5, [-1, -1, 0, 1, 2]),
    ],
)
def test_time_series_start_at_zero_and_line_up(tmp_path, selection, frames, sr, samples):
    """What NOVA and SSI readers place at t = k / sr is the frame analysed for that time."""
    info = MediaInfo(tmp_path / "clip.mp4", 64, 48, 10.0, 20, False)
    options = OutputOptions(directory=tmp_path, landmarks=True, embeddings=True)
    context = WriterContext(info, 8, options, {"role": "r", "annotator": "a", "description": ""},
                            selection)  # fmt: skip
    writers = open_writers(context)
    batch = batch_of(frames, 10.0)
    for part in (slice(0, 2), slice(2, None)):  # across batches
        for writer in writers:
            writer.add(ResultBatch(**{k: v[part] for k, v in vars(batch).items() if v is not None}))
    close_all(writers)
    samples = np.asarray(samples)
    face = samples >= 0
    valence = read_annotation(tmp_path / "clip.valence.annotation")
    assert valence.scheme.sr == sr and len(valence.data) == len(samples)
    assert np.isnan(valence.data["score"][~face]).all() and (valence.data["conf"][~face] == 0).all()
    np.testing.assert_array_equal(valence.data["score"][face], batch.valence[samples[face]])
    for name, column in (("landmarks", 0), ("embedding", 5)):
        stream = read_stream(tmp_path / f"clip.{name}.stream")
        assert stream.sr == sr and stream.data.shape[0] == len(samples)
        assert np.isnan(stream.data[~face]).all()
        np.testing.assert_array_equal(stream.data[face, column], batch.valence[samples[face]])
    # The discrete annotation keeps the frames' own times: one segment per analysed frame.
    expression = read_annotation(tmp_path / "clip.expression.annotation").data
    np.testing.assert_allclose(expression["from"], batch.time, atol=1e-9)
    assert expression["to"][-1] == pytest.approx(batch.time[-1] + 1 / sr)
    csv = read_results_csv(tmp_path / "clip.csv")
    np.testing.assert_array_equal(csv["frame"], frames)


def test_analyze_a_part_at_a_rate_end_to_end(standin_weights, tmp_path):
    """The CLI: rows for the analysed frames only, their results those of a run over every
    frame, annotations at the rate from t = 0, the selection in the summary; a rate
    above the video's is one line and a failed input, --end before --start a usage error."""
    sample = make_sample(tmp_path, width=160, height=120, fps=10.0, seconds=1.2, gap=None)
    common = ["--weights", standin_weights[8], "--device", "cpu", "--precision", "fp32", "-q"]
    run_cli("analyze", sample.video, "-o", tmp_path / "all", "--start", 0.4, "--end", 0.9, *common)
    run_cli("analyze", sample.video, "-o", tmp_path / "part", "--start", 0.3, "--end", 1.0,
            "--sample-rate", 5, *common)  # fmt: skip
    every = read_results_csv(tmp_path / "all" / "astronaut.csv")
    part = read_results_csv(tmp_path / "part" / "astronaut.csv")
    np.testing.assert_array_equal(every["frame"], [4, 5, 6, 7, 8])
    np.testing.assert_array_equal(part["frame"], [4, 6, 8])  # 0.4, 0.6, 0.8 s
    np.testing.assert_array_equal(part["time"], every["time"][[0, 2, 4]])
    for column in ("valence", "arousal", "prob_happy"):  # passes of other sizes: float rounding
        np.testing.assert_allclose(part[column], every[column][[0, 2, 4]], atol=1e-6)
    arousal = read_annotation(tmp_path / "part" / "astronaut.arousal.annotation")
    assert arousal.scheme.sr == 5 and len(arousal.data) == 5  # 0, 0.2 (no face), 0.4 ... 0.8
    assert np.isnan(arousal.data["score"][:2]).all()
    np.testing.assert_allclose(arousal.data["score"][2:], part["arousal"], atol=1e-7)
    summary = json.loads((tmp_path / "part" / "astronaut.emonet.json").read_text())
    assert summary["selection"] == {"start": 0.3, "end": 1.0, "sample_rate": 5.0}
    assert summary["frames"] == 3

    proc = run_cli("analyze", sample.video, "-o", tmp_path / "x", "--sample-rate", 50, *common,
                   check=False)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"emonet: error: {sample.video}: --sample-rate 50 is above the video's frame rate "
        "(10 frames/s)"
    ]
    proc = run_cli("analyze", sample.video, "--start", 2, "--end", 1, *common, check=False)
    assert proc.returncode == 2 and "Error: --end 1 must be after --start 2" in proc.stderr
