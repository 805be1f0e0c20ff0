"""Pieces of the analysis chain that need no model: frame-to-box lookup and smoothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emonet_cli.analysis.feed import face_matrix
from emonet_cli.cli import PRECISION_CHOICES
from emonet_cli.constants import PRECISIONS, SMOOTHING_WEIGHTS
from emonet_cli.devices import resolve_precision, select_device
from emonet_cli.errors import EmonetError
from emonet_cli.faces import BoxSource, FaceBoxes
from emonet_cli.faces.align import affine_from_box
from emonet_cli.faces.people import open_people
from emonet_cli.formats.streams import write_stream
from emonet_cli.media.frames import Frame, MediaInfo
from emonet_cli.outputs.results import TemporalSmoother


def video_info(tmp_path, fps=25.0, frames=10, width=200, height=100) -> MediaInfo:
    return MediaInfo(tmp_path / "clip.mp4", width, height, fps, frames, False)


class Lookup:
    """The affine and confidence that analysis takes from a box source for one frame."""

    def __init__(self, source: BoxSource, info: MediaInfo, min_conf: float):
        self.people = open_people(source, info)
        self.min_conf = min_conf

    def matrix(self, index: int, time: float):
        (faces,) = self.people.faces([Frame(index, time, None)])
        return face_matrix(faces[None], self.min_conf)

    def stream_mismatch(self):
        return next(iter(self.people.warnings), None)


def test_stream_sample_for_a_frame_is_floor_t_times_sr(tmp_path):
    rows = np.zeros((10, 5), dtype=np.float32)
    rows[:, :4] = [0.1, 0.2, 0.5, 0.6]  # ymin xmin ymax xmax
    rows[:, 4] = np.linspace(0.7, 0.79, 10)  # a distinct confidence per sample
    stream = write_stream(tmp_path / "boxes.stream", rows, sr=10.0)
    lookup = Lookup(BoxSource(stream), video_info(tmp_path, fps=25.0, frames=25), 0.65)
    for index, time in [(0, 0.0), (3, 0.12), (4, 0.16), (24, 0.96)]:
        matrix, conf = lookup.matrix(index, time)
        assert conf == pytest.approx(rows[int(np.floor(time * 10 + 1e-6)), 4])
        np.testing.assert_allclose(matrix, affine_from_box((40, 10, 120, 50)))
    assert lookup.matrix(25, 1.0) == (None, 0.0)  # past the end of the stream
    assert lookup.stream_mismatch() is None


def test_equal_rates_are_index_aligned(tmp_path):
    """DISCOVER writes 29.970 for 30000/1001 video: the lookup must not drift by a sample."""
    fps = 30000 / 1001
    rows = np.tile([0.1, 0.2, 0.5, 0.6, 0.0], (300, 1)).astype(np.float32)
    rows[:, 4] = np.arange(300) / 1000 + 0.7
    stream = write_stream(tmp_path / "boxes.stream", rows, sr=29.970)
    lookup = Lookup(BoxSource(stream), video_info(tmp_path, fps=fps, frames=300), 0.65)
    for index in (0, 1, 100, 299):
        assert lookup.matrix(index, index / fps)[1] == pytest.approx(rows[index, 4])


def test_low_confidence_and_mismatched_duration(tmp_path):
    rows = np.tile([0.1, 0.2, 0.5, 0.6, 0.5], (5, 1)).astype(np.float32)
    stream = write_stream(tmp_path / "boxes.stream", rows, sr=25.0)
    lookup = Lookup(BoxSource(stream), video_info(tmp_path, frames=10), 0.65)
    assert lookup.matrix(0, 0.0) == (None, 0.0)
    assert "lasts 0.200 s, the video 0.400 s" in lookup.stream_mismatch()
    assert Lookup(BoxSource(stream), video_info(tmp_path, frames=10), 0.4).matrix(0, 0)[1] == 0.5


def test_csv_boxes_follow_the_frame_index(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("frame,x1,y1,x2,y2\n0,10,10,50,50\n2,20,20,60,60\n")
    lookup = Lookup(BoxSource(path), video_info(tmp_path, frames=4), 0.65)
    np.testing.assert_allclose(lookup.matrix(2, 123.0)[0], affine_from_box((20, 20, 60, 60)))
    assert lookup.matrix(1, 0.04) == (None, 0.0)  # absent from the CSV
    assert lookup.matrix(3, 0.08) == (None, 0.0)  # past its end


def test_empty_or_inverted_boxes_in_memory_are_no_face_and_counted(tmp_path):
    """Boxes handed over in memory follow the rule of box files: no face, one warning."""
    corners = np.array([[10, 10, 50, 60], [10, 10, 10, 60], [50, 10, 10, 60], [9, 9, 9, 9]])
    conf = np.float32([0.9, 0.9, 0.9, 0.0])  # the last one is no detection: not counted
    boxes = FaceBoxes(corners.astype(float), conf, None, None, tmp_path / "faces.csv")
    lookup = Lookup(BoxSource(boxes=boxes), video_info(tmp_path, frames=4), 0.65)
    assert lookup.matrix(0, 0.0)[0] is not None
    assert lookup.matrix(1, 0.04) == lookup.matrix(2, 0.08) == (None, 0.0)
    (warning,) = lookup.people.warnings
    assert "2 of 4 boxes in faces.csv are empty or inverted" in warning


def test_a_box_list_warns_only_about_the_image_at_hand(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("a.png 10 20 5 5\nb.png 1 2 30 40\n")
    warnings = {
        name: open_people(
            BoxSource(path), MediaInfo(tmp_path / name, 64, 48, 0.0, 1, True)
        ).warnings
        for name in ("a.png", "b.png")
    }
    assert warnings["b.png"] == [] and "its box in list.txt is empty" in warnings["a.png"][0]


def smooth_reference(values: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Straight from the definition, frame by frame."""
    weights = np.asarray(SMOOTHING_WEIGHTS)  # oldest to newest
    out = np.full(values.shape, np.nan)
    for t in range(len(values)):
        if not face[t]:
            continue
        window = [
            (weights[4 - lag], values[t - lag]) for lag in range(5) if t >= lag and face[t - lag]
        ]
        total = sum(w for w, _ in window)
        out[t] = sum(w * v for w, v in window) / total
    return out


def test_smoothing_is_causal_renormalised_and_batch_independent():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(23, 3))
    face = np.ones(23, dtype=bool)
    face[[6, 7, 15]] = False
    expected = smooth_reference(values, face)
    np.testing.assert_allclose(expected[0], values[0])
    # Renormalised: a constant signal stays constant at the start and around gaps.
    constant = TemporalSmoother()(np.full((23, 3), 0.7), face)
    np.testing.assert_allclose(constant[face], 0.7, rtol=1e-12)
    assert np.isnan(constant[~face]).all()
    for batch in (1, 4, 23):
        smoother = TemporalSmoother()
        parts = [smoother(values[i : i + batch], face[i : i + batch]) for i in range(0, 23, batch)]
        np.testing.assert_array_equal(
            np.concatenate(parts), np.concatenate([TemporalSmoother()(values, face)])
        )
        np.testing.assert_allclose(np.concatenate(parts), expected, rtol=1e-12)


def test_device_and_precision_policy():
    assert PRECISION_CHOICES == PRECISIONS  # the CLI's copy, kept torch-free for --help
    assert select_device("cpu") == torch.device("cpu")
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu")) in ("fp32", "bf16")
    with pytest.raises(EmonetError, match="fp16 is not supported on the CPU"):
        resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(EmonetError, match="unknown device 'gpu0'"):
        select_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(EmonetError, match="CUDA is not available"):
            select_device("cuda:0")
