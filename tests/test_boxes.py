"""Face boxes from BlazeFace SSI streams, CSV files and image lists."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from discover_utils.data.handler.file_handler import FileHandler
from discover_utils.data.stream import SSIStream as DiscoverStream
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from emonet_cli.errors import FormatError
from emonet_cli.faces import read_boxes
from emonet_cli.faces.boxfiles import MAX_FRAME_NUMBER
from emonet_cli.formats.streams import write_stream


def test_reads_a_blazeface_stream_saved_by_discover(tmp_path):
    # As DISCOVER's BlazeFace module saves it: ymin, xmin, ymax, xmax, confidence; a box may
    # reach past the frame; a frame without a detection repeats the last box with confidence 0.
    rows = np.array(
        [
            [0.0, 0.0, 1.0, 1.0, 0.0],
            [0.25, 0.5, 0.75, 0.75, 0.9],
            [-0.1, 0.9, 0.5, 1.2, 0.8],
            [-0.1, 0.9, 0.5, 1.2, 0.0],
        ],
        dtype=np.float32,
    )
    stream = DiscoverStream(
        data=rows,
        sample_rate=25.0,
        media_type="feature;face;boundingbox;blazeface",
        custom_meta={"size": "640:480"},
    )
    FileHandler().save(stream, tmp_path / "face.stream")

    boxes = read_boxes(tmp_path / "face.stream", frame_size=(640, 480))

    ymin, xmin, ymax, xmax = rows[:, :4].astype(np.float64).T
    expected = np.stack([xmin * 640, ymin * 480, xmax * 640, ymax * 480], axis=1)
    np.testing.assert_array_equal(boxes.boxes, expected)
    np.testing.assert_array_equal(
        boxes.boxes[2], np.float32([0.9, -0.1, 1.2, 0.5]) * [640, 480, 640, 480]
    )
    np.testing.assert_array_equal(boxes.conf, rows[:, 4])
    assert boxes.conf.dtype == np.float32 and boxes.boxes.dtype == np.float64
    assert (boxes.sr, boxes.images, boxes.source, len(boxes)) == (
        25.0,
        None,
        tmp_path / "face.stream",
        4,
    )


@settings(max_examples=25, deadline=None)
@given(
    hnp.arrays(
        np.float32, st.tuples(st.integers(1, 10), st.just(4)), elements=st.floats(-2, 3, width=32)
    ),
    st.integers(1, 4096),
    st.integers(1, 4096),
    st.sampled_from(["BINARY", "ASCII"]),
)
def test_four_value_streams_scale_to_pixels_with_confidence_one(rows, width, height, ftype):
    with tempfile.TemporaryDirectory() as folder:
        path = write_stream(Path(folder) / "b", rows, 30.0, ftype=ftype)
        boxes = read_boxes(path, frame_size=(width, height))

    values = rows.astype(np.float64)
    np.testing.assert_array_equal(boxes.boxes[:, [0, 2]], values[:, [1, 3]] * width)
    np.testing.assert_array_equal(boxes.boxes[:, [1, 3]], values[:, [0, 2]] * height)
    np.testing.assert_array_equal(boxes.conf, np.ones(len(rows), dtype=np.float32))


def test_stream_boxes_need_the_frame_size(tmp_path):
    path = write_stream(tmp_path / "b", np.zeros((1, 5)), 30.0)
    with pytest.raises(ValueError, match="frame_size"):
        read_boxes(path)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.zeros((2, 3)), "this stream has dim 3"),
        (np.zeros((2, 6)), "this stream has dim 6"),
        (np.array([[0, 0, 1, 1, 1], [0, np.nan, 1, 1, 1]]), "sample 1 has a NaN or infinite"),
        (np.array([[0, 0, np.inf, 1]]), "sample 0 has a NaN or infinite"),
        (np.array([[0, 0, 1, 1, np.nan]]), "sample 0 has a NaN or infinite"),
    ],
)
def test_bad_box_streams_give_one_error_naming_the_file(tmp_path, rows, message):
    path = write_stream(tmp_path / "b", rows, 30.0)
    with pytest.raises(FormatError, match=re.escape("b.stream")) as error:
        read_boxes(path, frame_size=(640, 480))
    assert message in str(error.value)


def test_empty_box_stream_names_the_file(tmp_path):
    info = '<info ftype="BINARY" sr="25" dim="5" byte="4" type="FLOAT"/>'
    chunk = '<chunk from="0" to="0" byte="0" num="0"/>'
    (tmp_path / "b.stream").write_text(f'<stream ssi-v="2">{info}{chunk}</stream>')
    (tmp_path / "b.stream~").write_bytes(b"")
    with pytest.raises(FormatError, match=r"b\.stream: empty stream"):
        read_boxes(tmp_path / "b.stream", frame_size=(640, 480))


def test_csv_stays_sparse_over_frames(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("frame,x1,y1,x2,y2,conf\n3,10,20,110,140,0.5\n0,1.5,2,50,60,0.9\n\n")

    boxes = read_boxes(path, frame_size=(640, 480))

    assert len(boxes) == 2
    np.testing.assert_array_equal(boxes.frames, [0, 3])
    np.testing.assert_array_equal(boxes.boxes, [[1.5, 2, 50, 60], [10, 20, 110, 140]])
    np.testing.assert_array_equal(boxes.conf, np.float32([0.9, 0.5]))
    assert [boxes.row(frame) for frame in (-1, 0, 1, 2, 3, 4)] == [None, 0, None, None, 1, None]
    assert (boxes.sr, boxes.images, boxes.source) == (None, None, path)


def test_a_huge_frame_number_costs_one_row(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text(f"frame,x1,y1,x2,y2\n{MAX_FRAME_NUMBER},1,2,30,40\n")
    boxes = read_boxes(path)
    assert boxes.boxes.shape == (1, 4) and boxes.row(MAX_FRAME_NUMBER) == 0


def test_csv_without_confidence_column_means_confidence_one(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("x1, y1, x2, y2, frame\n0,0,10,10,0\n5,5,20,20,1\n")
    boxes = read_boxes(path)
    np.testing.assert_array_equal(boxes.boxes, [[0, 0, 10, 10], [5, 5, 20, 20]])
    np.testing.assert_array_equal(boxes.conf, [1, 1])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "header must be"),
        ("frame,x,y,w,h\n0,1,2,3,4\n", "header must be"),
        ("frame,x1,y1,x2,y2,confidence\n0,1,2,3,4,1\n", "header must be"),
        ("frame,x1,y1,x2,y2\n", "no boxes"),
        ("frame,x1,y1,x2,y2\n0,1,2,3\n", "line 2: 4 fields"),
        ("frame,x1,y1,x2,y2\n0,1,2,30,40\n0,1,2,30,40\n", "line 3: frame 0 appears twice"),
        ("frame,x1,y1,x2,y2\n-1,1,2,30,40\n", "not a frame index"),
        ("frame,x1,y1,x2,y2\n1.5,1,2,30,40\n", "not a frame index"),
        ("frame,x1,y1,x2,y2\n0,1,nan,30,40\n", "NaN or infinite"),
        ("frame,x1,y1,x2,y2\n0,1,2,inf,40\n", "NaN or infinite"),
        ("frame,x1,y1,x2,y2\n0,1,2,three,40\n", "'three' is not a number"),
        ("frame,x1,y1,x2,y2\n1712345678901,1,2,30,40\n", "(above 1,000,000,000: epoch milli"),
    ],
)
def test_bad_csv_gives_one_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "faces.csv"
    path.write_text(text)
    with pytest.raises(FormatError, match=re.escape("faces.csv")) as error:
        read_boxes(path)
    assert message in str(error.value)


def test_image_list_keeps_paths_as_written(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("images/a.jpg 1 2 30 40\n\n  my photos/b c.png\t10 20 110.5 220\n")

    boxes = read_boxes(path)

    assert boxes.images == ["images/a.jpg", "my photos/b c.png"]
    np.testing.assert_array_equal(boxes.boxes, [[1, 2, 30, 40], [10, 20, 110.5, 220]])
    np.testing.assert_array_equal(boxes.conf, [1, 1])
    assert boxes.sr is None and len(boxes) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no boxes"),
        ("a.jpg 1 2 3\n", "line 1: expected 'IMAGE_PATH x1 y1 x2 y2'"),
        ("a.jpg 1 2 30 40\nb.jpg 1 2 NaN 40\n", "line 2: NaN or infinite"),
        ("a.jpg 1 2 x 40\n", "'x' is not a number"),
    ],
)
def test_bad_image_list_gives_one_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "list.txt"
    path.write_text(text)
    with pytest.raises(FormatError, match=re.escape("list.txt")) as error:
        read_boxes(path)
    assert message in str(error.value)


def test_missing_box_file_names_it(tmp_path):
    for name in ("none.csv", "none.txt", "none.stream"):
        with pytest.raises(FormatError, match=re.escape(name)):
            read_boxes(tmp_path / name, frame_size=(640, 480))


def test_empty_and_inverted_boxes_are_read_and_found(tmp_path):
    """One rule for every source: such a box is read (and means no face for its frame)."""
    csv_path = tmp_path / "faces.csv"
    csv_path.write_text(
        "frame,x1,y1,x2,y2,conf\n0,1,2,30,40,1\n1,5,5,5,40,1\n2,9,9,1,1,1\n3,9,9,1,1,0\n"
    )
    list_path = tmp_path / "list.txt"
    list_path.write_text("a.jpg 10 20 5 5\nb.jpg 1 2 30 40\n")
    stream = write_stream(tmp_path / "b", np.float32([[0.5, 0.5, 0.5, 0.9, 0.9]]), 30.0)

    csv_boxes, list_boxes = read_boxes(csv_path), read_boxes(list_path)
    stream_boxes = read_boxes(stream, frame_size=(640, 480))

    np.testing.assert_array_equal(csv_boxes.boxes[2], [9, 9, 1, 1])
    # A box without a detection (confidence 0) counts for nothing.
    np.testing.assert_array_equal(csv_boxes.empty_or_inverted(), [False, True, True, False])
    np.testing.assert_array_equal(list_boxes.empty_or_inverted(), [True, False])
    np.testing.assert_array_equal(stream_boxes.empty_or_inverted(), [True])


def test_fifo_box_files_are_refused_without_waiting(tmp_path):
    for name in ("fifo.csv", "fifo.txt", "fifo.stream"):
        os.mkfifo(tmp_path / name)  # reading one would wait for a writer forever
        with pytest.raises(FormatError, match=f"{name}: .*not a regular file"):
            read_boxes(tmp_path / name, frame_size=(640, 480))
