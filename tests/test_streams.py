"""SSI stream reader and writer: DISCOVER interoperability, round trips, and each error."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from discover_utils.data.handler.file_handler import FileHandler, _SSIStreamFileHandler
from discover_utils.data.stream import SSIStream as DiscoverStream
from discover_utils.utils.type_definitions import SSIFileType
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from emonet_cli.errors import FormatError
from emonet_cli.formats.streams import SSI_TYPES, format_float, read_stream, write_stream


def discover_write(path: Path, data: np.ndarray, sr: float, ftype: str, chunk_sizes: list[int]):
    """Write a stream with hcai-discover-utils, as DISCOVER does, in chunks of the given sizes."""
    row_bytes = data.shape[1] * data.dtype.itemsize
    starts = np.cumsum([0, *chunk_sizes[:-1]])
    chunks = np.array(
        [(s / sr, (s + n) / sr, s * row_bytes, n) for s, n in zip(starts, chunk_sizes)],
        dtype=DiscoverStream.CHUNK_DTYPE,
    )
    stream = DiscoverStream(data=data, sample_rate=sr, chunks=chunks, dtype=data.dtype.type)
    # FileHandler.save drops the ftype argument, so the stream handler is called directly.
    _SSIStreamFileHandler().save(stream, path, ftype=SSIFileType[ftype])


@pytest.mark.parametrize("ftype", ["BINARY", "ASCII"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("chunk_sizes", [[37], [10, 20, 7]])
def test_reads_streams_written_by_discover(tmp_path, ftype, dtype, chunk_sizes):
    rng = np.random.default_rng(7)
    data = (rng.standard_normal((sum(chunk_sizes), 6)) * 100).astype(dtype)
    data[3, 2] = np.nan
    path = tmp_path / "features.stream"
    discover_write(path, data, 25.0, ftype, chunk_sizes)

    stream = read_stream(path)

    assert stream.data.dtype == dtype
    np.testing.assert_array_equal(stream.data, data)
    assert (stream.sr, stream.ftype, stream.path) == (25.0, ftype, path)
    assert stream.type == ("FLOAT" if dtype == np.float32 else "DOUBLE")
    assert stream.duration == pytest.approx(len(data) / 25.0)
    stream.data[0, 0] = 1  # a writable array, not a view of the file's bytes


@pytest.mark.parametrize("ftype", ["BINARY", "ASCII"])
@pytest.mark.parametrize("type_name", ["FLOAT", "DOUBLE", "INT", "SHORT"])
def test_discover_reads_streams_we_write(tmp_path, ftype, type_name):
    rng = np.random.default_rng(3)
    data = (rng.standard_normal((20, 3)) * 1000).astype(SSI_TYPES[type_name][0])

    path = write_stream(tmp_path / "out.stream", data, 29.97, ftype=ftype, type=type_name)
    loaded = FileHandler().load(path)

    assert loaded.data.dtype == data.dtype
    np.testing.assert_array_equal(loaded.data, data)
    assert loaded.meta_data.sample_rate == 29.97
    assert loaded.meta_data.num_samples == 20


def test_reads_integer_streams_that_discover_prints_as_floats(tmp_path):
    data = np.array([[1, -2], [300, 4]], dtype=np.int32)
    path = tmp_path / "ints.stream"
    discover_write(path, data, 10.0, "ASCII", [2])
    assert "e+" in (tmp_path / "ints.stream~").read_text()

    np.testing.assert_array_equal(read_stream(path).data, data)


def stream_arrays():
    """(type name, ftype, array) with any values the type can hold, NaN and infinities included."""
    return st.sampled_from(sorted(SSI_TYPES)).flatmap(
        lambda name: st.tuples(
            st.just(name),
            st.sampled_from(["BINARY", "ASCII"]),
            hnp.arrays(
                SSI_TYPES[name][0],
                st.tuples(st.integers(1, 12), st.integers(1, 6)),
            ),
        )
    )


@settings(max_examples=40, deadline=None)
@given(stream_arrays(), st.floats(0.01, 1000.0))
def test_write_then_read_round_trips(case, sr):
    type_name, ftype, data = case
    with tempfile.TemporaryDirectory() as folder:
        path = write_stream(Path(folder) / "x", data, sr, ftype=ftype, type=type_name)
        stream = read_stream(path)

    assert path.name == "x.stream"
    assert stream.data.dtype == data.dtype.newbyteorder("=")
    np.testing.assert_array_equal(stream.data, data)
    assert (stream.sr, stream.ftype, stream.type) == (sr, ftype, type_name)


@settings(max_examples=60, deadline=None)
@given(st.floats(width=32), st.floats())
def test_format_float_reads_back_exactly_without_exponent(single, double):
    for value in (np.float32(single), np.float64(double)):
        text = format_float(value)
        assert "e" not in text
        np.testing.assert_array_equal(type(value)(float(text)), value)


def test_writer_output_is_what_ssi_expects(tmp_path):
    data = np.array([[0.5, -1.0], [np.nan, 2.25]], dtype=np.float32)
    path = write_stream(tmp_path / "boxes", data, 30, ftype="ASCII", meta={"size": "640:480"})

    assert sorted(p.name for p in tmp_path.iterdir()) == ["boxes.stream", "boxes.stream~"]
    assert (tmp_path / "boxes.stream~").read_text() == "0.5 -1\nNaN 2.25\n"
    header = path.read_text()
    assert '<stream ssi-v="2">' in header
    assert '<info ftype="ASCII" sr="30" dim="2" byte="4" type="FLOAT" delim=" " />' in header
    assert '<meta size="640:480" />' in header
    assert re.search(r'<chunk from="0" to="0.0666\d*" byte="0" num="2" />', header)
    assert read_stream(path).meta == {"size": "640:480"}


def test_binary_data_is_little_endian_rows(tmp_path):
    data = np.arange(6, dtype=np.float64).reshape(3, 2)
    write_stream(tmp_path / "x.stream", data, 1.0, type="DOUBLE")
    assert (tmp_path / "x.stream~").read_bytes() == data.astype("<f8").tobytes()


def test_accepts_the_data_file_path(tmp_path):
    data = np.ones((2, 2), dtype=np.float32)
    write_stream(tmp_path / "x.stream", data, 5.0)
    stream = read_stream(tmp_path / "x.stream~")
    assert stream.path == tmp_path / "x.stream"
    np.testing.assert_array_equal(stream.data, data)


@pytest.mark.parametrize(("byte", "dtype"), [(4, np.int32), (8, np.int64)])
def test_long_takes_its_width_from_byte(tmp_path, byte, dtype):
    # SSI writes a C long: 4 bytes on Windows; DISCOVER writes 8.
    data = np.array([[1, -2, 3]], dtype=dtype)
    write_raw(tmp_path, info(type="LONG", byte=byte, dim=3), chunk(1), data=data.tobytes())
    stream = read_stream(tmp_path / "x.stream")
    assert stream.data.dtype == dtype
    np.testing.assert_array_equal(stream.data, data)


def test_ascii_with_another_delimiter(tmp_path):
    write_raw(tmp_path, info(ftype="ASCII", delim=";"), chunk(2), data=b"1;2.5\n-3; 4\n")
    np.testing.assert_array_equal(read_stream(tmp_path / "x.stream").data, [[1, 2.5], [-3, 4]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ftype": "TEXT"}, "ftype"),
        ({"type": "CHAR"}, "unknown SSI type"),
        ({"sr": 0.0}, "sample rate"),
        ({"data": np.ones(3)}, "(samples, dim)"),
        ({"data": np.ones((0, 3))}, "no samples"),
    ],
)
def test_writer_rejects_bad_arguments(tmp_path, kwargs, message):
    arguments = {"data": np.ones((2, 3)), "sr": 10.0, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        write_stream(tmp_path / "x.stream", **arguments)
    assert list(tmp_path.iterdir()) == []


def info(**attributes) -> str:
    values = {"ftype": "BINARY", "sr": "10", "dim": "2", "byte": "4", "type": "FLOAT"}
    values.update(attributes)
    return "<info " + " ".join(f'{k}="{v}"' for k, v in values.items() if v is not None) + " />"


def chunk(num: int) -> str:
    return f'<chunk from="0" to="{num / 10}" byte="0" num="{num}" />'


def write_raw(tmp_path: Path, *elements: str, data: bytes | None = b"", root: str = "stream"):
    """A hand-made stream `x.stream` (+ `x.stream~` unless data is None)."""
    body = "\n".join(elements)
    header = f'<?xml version="1.0" ?>\n<{root} ssi-v="2">\n{body}\n</{root}>\n'
    (tmp_path / "x.stream").write_text(header)
    if data is not None:
        (tmp_path / "x.stream~").write_bytes(data)


TWO_FLOATS = np.zeros((1, 2), dtype="<f4").tobytes()


@pytest.mark.parametrize(
    ("elements", "data", "file_name", "message"),
    [
        ((info(), chunk(1)), None, "x.stream~", "missing"),
        ((info(), chunk(2)), TWO_FLOATS + b"\0\0", "x.stream~", "truncated"),
        ((info(), chunk(1)), TWO_FLOATS * 2, "x.stream~", "more than"),
        ((info(ftype="ASCII"), chunk(3)), b"1 2\n3 4\n", "x.stream~", "chunks declare 3"),
        ((info(ftype="ASCII"), chunk(2)), b"1 2\n3\n", "x.stream~", "row 2 has 1 values"),
        ((info(ftype="ASCII"), chunk(1)), b"1 x\n", "x.stream~", "'x' is not a number"),
        ((info(ftype="ASCII", type="INT"), chunk(1)), b"1 2.5\n", "x.stream~", "not an integer"),
        ((info(ftype="ASCII", type="SHORT", byte=2), chunk(1)), b"1 99999\n", "x.stream~", "range"),
        ((info(type="CHAR"), chunk(1)), TWO_FLOATS, "x.stream", "unknown sample type"),
        ((info(byte=8), chunk(1)), TWO_FLOATS, "x.stream", 'byte="8"'),
        ((info(ftype="LZ4"), chunk(1)), TWO_FLOATS, "x.stream", "unknown ftype"),
        ((info(dim=None), chunk(1)), TWO_FLOATS, "x.stream", "'dim'"),
        ((info(dim="two"), chunk(1)), TWO_FLOATS, "x.stream", "not an integer"),
        ((info(dim=0), chunk(1)), TWO_FLOATS, "x.stream", "dim"),
        ((info(sr="-5"), chunk(1)), TWO_FLOATS, "x.stream", "sample rate"),
        ((chunk(1),), TWO_FLOATS, "x.stream", "no <info>"),
        ((info(), chunk(0)), b"", "x.stream", "empty stream"),
        ((info(),), b"", "x.stream", "empty stream"),
        ((info(), '<chunk from="0" to="1" byte="0" num="-2" />'), b"", "x.stream", "negative"),
        ((info(), "<chunk"), TWO_FLOATS, "x.stream", "malformed XML"),
    ],
)
def test_each_broken_stream_gives_one_error_naming_the_file(
    tmp_path, elements, data, file_name, message
):
    write_raw(tmp_path, *elements, data=data)
    with pytest.raises(FormatError, match=re.escape(file_name)) as error:
        read_stream(tmp_path / "x.stream")
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_header_names_the_file(tmp_path):
    with pytest.raises(FormatError, match=re.escape(str(tmp_path / "none.stream"))):
        read_stream(tmp_path / "none.stream")


def test_wrong_root_element_names_the_file(tmp_path):
    write_raw(tmp_path, info(), chunk(1), data=TWO_FLOATS, root="annotation")
    with pytest.raises(FormatError, match=r"x\.stream: expected a <stream> header"):
        read_stream(tmp_path / "x.stream")
