"""NOVA annotation writer and reader: loading in hcai-discover-utils, round trips, errors."""

from __future__ import annotations

import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from discover_utils.data.handler.file_handler import FileHandler
from hypothesis import given, settings
from hypothesis import strategies as st

from emonet_cli.errors import FormatError
from emonet_cli.formats.annotations import (
    GARBAGE_ID,
    ContinuousAnnotationWriter,
    ContinuousScheme,
    DiscreteScheme,
    read_annotation,
    write_continuous_annotation,
    write_discrete_annotation,
)

EMOTIONS = DiscreteScheme(
    "emotion", ["Neutral", "Happy", "Sad"], ["#FF9E9E9E", "#FFFFC107", "#FF2196F3"]
)
VALENCE = ContinuousScheme("valence", sr=29.97)
FTYPES = ["ASCII", "BINARY"]


@st.composite
def discrete_rows(draw, min_size=0):
    """start, end (seconds), ids (garbage included), conf: the columns of a discrete annotation."""
    n = draw(st.integers(min_size, 15))
    start = np.array(draw(st.lists(st.floats(0, 3600), min_size=n, max_size=n)))
    length = np.array(draw(st.lists(st.floats(0, 10), min_size=n, max_size=n)))
    ids = np.array(draw(st.lists(st.integers(GARBAGE_ID, 2), min_size=n, max_size=n)))
    conf = draw(st.lists(st.floats(0, 1, width=32), min_size=n, max_size=n))
    conf = np.where(ids == GARBAGE_ID, 0, np.array(conf, dtype=np.float32))
    return start, start + length, ids, conf


@st.composite
def continuous_rows(draw, min_size=0):
    """score (NaN for no face), conf: the columns of a continuous annotation."""
    n = draw(st.integers(min_size, 15))
    score = st.one_of(st.floats(-1, 1, width=32), st.just(float("nan")))
    score = np.array(draw(st.lists(score, min_size=n, max_size=n)), dtype=np.float32)
    conf = draw(st.lists(st.floats(0, 1, width=32), min_size=n, max_size=n))
    conf = np.where(np.isnan(score), 0, np.array(conf, dtype=np.float32))
    return score, conf


# hcai-discover-utils cannot load an ASCII continuous annotation of exactly one row
# (numpy.loadtxt returns a 0-d array), so the interop cases have at least two rows.
@settings(max_examples=15, deadline=None)
@given(discrete_rows(min_size=2), st.sampled_from(FTYPES))
def test_discover_loads_our_discrete_annotations(columns, ftype):
    start, end, ids, conf = columns
    with tempfile.TemporaryDirectory() as folder:
        path = write_discrete_annotation(
            Path(folder) / "expr", EMOTIONS, start, end, ids, conf, ftype=ftype, role="p1"
        )
        loaded = FileHandler().load(path)

    # discover_utils keeps times as int32 milliseconds, truncating seconds * 1000.
    np.testing.assert_array_equal(loaded.data["from"], (start * 1000).astype(np.int32))
    np.testing.assert_array_equal(loaded.data["to"], (end * 1000).astype(np.int32))
    np.testing.assert_array_equal(loaded.data["id"], ids)
    np.testing.assert_array_equal(loaded.data["conf"], conf.astype(np.float32))
    classes = loaded.annotation_scheme.classes
    assert [classes[str(i)]["name"] for i in range(3)] == EMOTIONS.classes
    assert [classes[str(i)]["color"] for i in range(3)] == EMOTIONS.colors
    assert (loaded.meta_data.role, loaded.meta_data.annotator) == ("p1", "emonet")


@settings(max_examples=15, deadline=None)
@given(continuous_rows(min_size=2), st.sampled_from(FTYPES))
def test_discover_loads_our_continuous_annotations(columns, ftype):
    score, conf = columns
    with tempfile.TemporaryDirectory() as folder:
        path = write_continuous_annotation(
            Path(folder) / "valence", VALENCE, score, conf, ftype=ftype, description="EmoNet-8"
        )
        loaded = FileHandler().load(path)

    np.testing.assert_array_equal(loaded.data["score"], score)
    np.testing.assert_array_equal(loaded.data["conf"], conf)
    scheme = loaded.annotation_scheme
    assert (scheme.name, scheme.sample_rate, scheme.min_val, scheme.max_val) == (
        "valence",
        29.97,
        -1.0,
        1.0,
    )
    assert loaded.meta_data.description == "EmoNet-8"


@settings(max_examples=25, deadline=None)
@given(discrete_rows(), st.sampled_from(FTYPES))
def test_discrete_round_trip(columns, ftype):
    start, end, ids, conf = columns
    with tempfile.TemporaryDirectory() as folder:
        path = write_discrete_annotation(
            Path(folder) / "e", EMOTIONS, start, end, ids, conf, ftype=ftype
        )
        annotation = read_annotation(path)

    assert annotation.scheme == EMOTIONS
    np.testing.assert_array_equal(annotation.data["from"], start)
    np.testing.assert_array_equal(annotation.data["to"], end)
    np.testing.assert_array_equal(annotation.data["id"], ids)
    np.testing.assert_array_equal(annotation.data["conf"], conf)
    assert (annotation.ftype, annotation.role, annotation.path.name) == (
        ftype,
        "emonet",
        "e.annotation",
    )


@settings(max_examples=25, deadline=None)
@given(continuous_rows(), st.sampled_from(FTYPES), st.floats(0.5, 120))
def test_continuous_round_trip(columns, ftype, sr):
    score, conf = columns
    scheme = ContinuousScheme("arousal", sr=sr, min=-1.0, max=1.0, color="#FFFF0000")
    with tempfile.TemporaryDirectory() as folder:
        path = write_continuous_annotation(Path(folder) / "a", scheme, score, conf, ftype=ftype)
        annotation = read_annotation(path)

    assert annotation.scheme == scheme
    np.testing.assert_array_equal(annotation.data["score"], score)
    np.testing.assert_array_equal(annotation.data["conf"], conf)


def test_ascii_keeps_every_digit_and_spells_nan_for_nova(tmp_path):
    score = np.array([0.123456789, np.nan, -0.5], dtype=np.float32)
    path = write_continuous_annotation(tmp_path / "v", VALENCE, score, [0.875, 0, 1])

    assert (tmp_path / "v.annotation~").read_text() == "0.12345679;0.875\nNaN;0\n-0.5;1\n"
    np.testing.assert_array_equal(read_annotation(path).data["score"], score)


def test_discrete_ascii_rows(tmp_path):
    write_discrete_annotation(tmp_path / "e", EMOTIONS, [0, 0.04], [0.04, 0.08], [2, -1], [0.5, 0])
    assert (tmp_path / "e.annotation~").read_text() == "0;0.04;2;0.5\n0.04;0.08;-1;0\n"


def test_binary_rows_are_packed_little_endian(tmp_path):
    write_discrete_annotation(tmp_path / "e", EMOTIONS, [1.5], [2.0], [1], [0.25], ftype="BINARY")
    raw = (tmp_path / "e.annotation~").read_bytes()
    expected = np.array([1.5, 2.0], "<f8").tobytes() + np.array([1], "<i4").tobytes()
    assert raw == expected + np.array([0.25], "<f4").tobytes()


def test_header_is_what_nova_reads(tmp_path):
    path = write_continuous_annotation(
        tmp_path / "v", VALENCE, [0.1, 0.2], [1, 1], annotator="emonet-cli", role="child"
    )
    root = ET.parse(path).getroot()
    assert (root.tag, root.attrib) == ("annotation", {"ssi-v": "3"})
    assert root.find("info").attrib == {"ftype": "ASCII", "size": "2"}
    assert root.find("meta").attrib == {
        "role": "child",
        "annotator": "emonet-cli",
        "description": "",
    }
    assert root.find("scheme").attrib == {
        "name": "valence",
        "type": "CONTINUOUS",
        "sr": "29.97",
        "min": "-1",
        "max": "1",
        "mincolor": VALENCE.min_color,
        "maxcolor": VALENCE.color,
    }

    path = write_discrete_annotation(tmp_path / "e", EMOTIONS, [0], [1], [0], [1])
    items = ET.parse(path).getroot().find("scheme").findall("item")
    assert [item.attrib for item in items] == [
        {"name": name, "id": str(i), "color": color}
        for i, (name, color) in enumerate(zip(EMOTIONS.classes, EMOTIONS.colors))
    ]


def test_batches_appear_only_on_close_and_abort_leaves_nothing(tmp_path):
    writer = ContinuousAnnotationWriter(tmp_path / "v", VALENCE, ftype="BINARY")
    writer.append([0.1, 0.2], [1, 1])
    writer.append([np.nan], [0])
    assert not any(path.exists() for path in writer.paths)
    writer.close()
    assert [path.name for path in writer.paths] == ["v.annotation", "v.annotation~"]
    assert len(read_annotation(writer.paths[0]).data) == 3

    aborted = ContinuousAnnotationWriter(tmp_path / "w", VALENCE)
    aborted.append([0.5], [1])
    aborted.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.annotation", "v.annotation~"]


def test_empty_annotation_round_trips(tmp_path):
    path = write_discrete_annotation(tmp_path / "e", EMOTIONS, [], [], [], [])
    assert len(read_annotation(path).data) == 0


@pytest.mark.parametrize(
    ("columns", "scheme", "message"),
    [
        (([0, 1], [1], [0], [1]), EMOTIONS, "equal length"),
        (([0], [1], [3], [1]), EMOTIONS, "class ids"),
        (([0], [1], [0.5], [1]), EMOTIONS, "class ids"),
        (([0], [1], [-2], [1]), EMOTIONS, "class ids"),
        (([1], [0], [0], [1]), EMOTIONS, "ends before"),
        (([np.inf], [np.inf], [0], [1]), EMOTIONS, "finite"),
        (([0], [1], [0], [np.nan]), EMOTIONS, "confidences"),
        (([0], [1], [0], [1]), DiscreteScheme("e", ["a", "b"], ["#FF000000"]), "colours"),
        (([0], [1], [0], [1]), DiscreteScheme("e", ["a"], ["red"]), "#AARRGGBB"),
    ],
)
def test_discrete_writer_rejects_bad_arguments(tmp_path, columns, scheme, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        write_discrete_annotation(tmp_path / "e", scheme, *columns)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("columns", "scheme", "message"),
    [
        (([np.inf], [1]), VALENCE, "finite or NaN"),
        (([0.5], [np.nan]), VALENCE, "confidences"),
        (([0.5, 0.1], [1]), VALENCE, "equal length"),
        (([0.5], [1]), ContinuousScheme("v", sr=0), "sample rate"),
    ],
)
def test_continuous_writer_rejects_bad_arguments(tmp_path, columns, scheme, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        write_continuous_annotation(tmp_path / "v", scheme, *columns)
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_unknown_ftype(tmp_path):
    with pytest.raises(ValueError, match="ftype"):
        write_continuous_annotation(tmp_path / "v", VALENCE, [0.5], [1], ftype="JSON")


DISCRETE_SCHEME = (
    '<scheme name="e" type="DISCRETE"><item name="a" id="0"/><item name="b" id="1"/></scheme>'
)
CONTINUOUS_SCHEME = '<scheme name="v" type="CONTINUOUS" sr="25" min="-1" max="1"/>'


def write_raw(tmp_path: Path, *elements: str, data: bytes | None = b""):
    """A hand-made annotation `x.annotation` (+ `x.annotation~` unless data is None)."""
    body = "\n".join(elements)
    header = f'<?xml version="1.0" ?>\n<annotation ssi-v="3">\n{body}\n</annotation>\n'
    (tmp_path / "x.annotation").write_text(header)
    if data is not None:
        (tmp_path / "x.annotation~").write_bytes(data)


def info(ftype="ASCII", size=1) -> str:
    return f'<info ftype="{ftype}" size="{size}"/>'


@pytest.mark.parametrize(
    ("elements", "data", "file_name", "message"),
    [
        ((info(), DISCRETE_SCHEME), None, "x.annotation~", "missing"),
        ((info("BINARY", 1), DISCRETE_SCHEME), bytes(30), "x.annotation~", "truncated"),
        ((info("BINARY", 1), CONTINUOUS_SCHEME), bytes(12), "x.annotation~", "truncated"),
        ((info(size=3), CONTINUOUS_SCHEME), b"0.5;1\n0.1;1\n", "x.annotation~", "size=3"),
        ((info(), DISCRETE_SCHEME), b"0;1;0\n", "x.annotation~", "3 fields, expected 4"),
        ((info(), DISCRETE_SCHEME), b"0;1;a;1\n", "x.annotation~", "cannot be read"),
        ((info(), DISCRETE_SCHEME), b"0;1;2;1\n", "x.annotation~", "unknown class id 2"),
        ((info(), '<scheme name="f" type="FREE"/>'), b"", "x.annotation", "'FREE'"),
        ((info(),), b"", "x.annotation", "no <scheme>"),
        ((DISCRETE_SCHEME,), b"", "x.annotation", "no <info>"),
        ((info("LZ4"), DISCRETE_SCHEME), b"", "x.annotation", "unknown ftype"),
        (('<info ftype="ASCII"/>', DISCRETE_SCHEME), b"", "x.annotation", "'size'"),
        ((info(), '<scheme type="CONTINUOUS" min="0" max="1"/>'), b"", "x.annotation", "'sr'"),
        ((info(), '<scheme type="CONTINUOUS" sr="0" min="0" max="1"/>'), b"", "x.annotation", "sr"),
        (
            (info(), '<scheme type="DISCRETE"><item name="a" id="1"/></scheme>'),
            b"",
            "x.annotation",
            "0..0",
        ),
        (
            (info(), '<scheme type="DISCRETE"><item id="0"/></scheme>'),
            b"",
            "x.annotation",
            "'name'",
        ),
        ((info(), "<scheme"), b"", "x.annotation", "malformed XML"),
    ],
)
def test_each_broken_annotation_gives_one_error_naming_the_file(
    tmp_path, elements, data, file_name, message
):
    write_raw(tmp_path, *elements, data=data)
    with pytest.raises(FormatError, match=re.escape(file_name)) as error:
        read_annotation(tmp_path / "x.annotation")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_header_names_the_file(tmp_path):
    with pytest.raises(FormatError, match=re.escape(str(tmp_path / "none.annotation"))):
        read_annotation(tmp_path / "none.annotation")


def test_reads_nova_files_with_scheme_color_and_data_path(tmp_path):
    # NOVA itself writes `color` for the background and reads it before `mincolor`.
    scheme = '<scheme name="v" type="CONTINUOUS" sr="25" min="0" max="1" color="#FF00FF00"/>'
    write_raw(tmp_path, info(size=2), scheme, data=b"0.25;1\nNaN;0\n")
    annotation = read_annotation(tmp_path / "x.annotation~")
    assert annotation.scheme == ContinuousScheme("v", 25.0, 0.0, 1.0, min_color="#FF00FF00")
    assert annotation.path == tmp_path / "x.annotation"
    np.testing.assert_array_equal(annotation.data["score"], [0.25, np.nan])
