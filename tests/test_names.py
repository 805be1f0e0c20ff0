"""File names whose bytes are not UTF-8 (docs/reliability.md): every command reads such videos
and images (OpenCV crashed on their names), writes outputs whose names carry the same bytes,
and keeps its JSON, CSV, HTML and printed text valid UTF-8, the name escaped."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import pytest
import skimage.data
from cli_helpers import run_cli

from emonet_cli.demo import make_sample
from emonet_cli.formats.names import json_escaped, shown_name
from emonet_cli.media.opencv_names import opencv_name
from emonet_cli.media.video import MediaReader

MODEL = ("--precision", "fp32", "--device", "cpu")
VIDEO = b"clip\xff\xfe"  # Latin-1 bytes, as on an old Windows or camera file system
IMAGE = b"still\xe9"
BROKEN = b"bad\xff"


def named(folder: Path, name: bytes) -> Path:
    """The path of `name`'s bytes in `folder`, as Python holds it (PEP 383)."""
    return folder / os.fsdecode(name)


def names_in(folder: Path) -> set[bytes]:
    return set(os.listdir(os.fsencode(folder)))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, standin_weights):
    """A folder with a video and an image under names that are not UTF-8, a normal video and a
    broken file, analysed at once into out/ with a private TMPDIR (where links would be)."""
    root = tmp_path_factory.mktemp("names")
    inputs = root / "in"
    inputs.mkdir()
    # The video with its box stream beside it (read as its box file), under the same bytes.
    sample = make_sample(root, name="sample", width=96, height=72, fps=10.0, seconds=0.4,
                         gap=None)  # fmt: skip
    for made, suffix in ((sample.video, b".mp4"), (sample.boxes, b".stream")):
        shutil.copy(made, named(inputs, VIDEO + suffix))
    shutil.copy(f"{sample.boxes}~", named(inputs, VIDEO + b".stream~"))
    shutil.copy(sample.video, inputs / "normal.mp4")  # detected
    face = skimage.data.astronaut()[:256, 64:320]
    cv2.imwrite(str(root / "face.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    shutil.copy(root / "face.png", named(inputs, IMAGE + b".png"))
    named(inputs, BROKEN + b".mp4").write_bytes(b"not a video at all")
    temporary = root / "tmp"
    temporary.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(temporary))
        out = root / "out"
        analysed = run_cli("analyze", inputs, "--weights", standin_weights[8], *MODEL,
                           "-o", out, check=False)  # fmt: skip
        detected = run_cli("detect", inputs, "-o", root / "det", check=False)
        reported = run_cli("report", out, "-q")
    return {"root": root, "in": inputs, "out": out, "tmp": temporary, "analysed": analysed,
            "detected": detected, "reported": reported}  # fmt: skip


def test_a_folder_run_reads_a_video_and_an_image_whose_names_are_not_utf8(corpus):
    proc, out = corpus["analysed"], corpus["out"]
    assert proc.returncode == 1, proc.stderr  # the broken file only
    # Printed lines are valid text (run_cli decodes them strictly) with the bytes as \xNN.
    assert "in/clip\\xff\\xfe.mp4 -> " in proc.stdout and "in/still\\xe9.png -> " in proc.stdout
    assert "in/normal.mp4 -> " in proc.stdout
    assert "bad\\xff.mp4: not a readable video" in proc.stderr
    for stem, kind in ((VIDEO, b".expression.annotation"), (IMAGE, b".csv"), (b"normal", b".csv")):
        assert stem + b".emonet.json" in names_in(out) and stem + kind in names_in(out)
    assert BROKEN + b".failed.json" in names_in(out)
    for csv_name in (VIDEO + b".csv", b"normal.csv"):
        rows = (out / os.fsdecode(csv_name)).read_text().splitlines()
        assert len(rows) == 5  # the header and 4 frames
    assert os.listdir(corpus["tmp"]) == []  # the links OpenCV opened are gone


def test_summaries_and_failure_records_are_utf8_json_that_give_back_the_name(corpus):
    out, inputs = corpus["out"], corpus["in"]
    for stem, source in ((VIDEO, VIDEO + b".mp4"), (IMAGE, IMAGE + b".png")):
        raw = named(out, stem + b".emonet.json").read_bytes()
        text = raw.decode("utf-8")  # valid UTF-8, the bytes as JSON escapes
        assert "\\udcff" in text or "\\udce9" in text
        summary = json.loads(text)
        assert os.fsencode(summary["input"]) == os.fsencode(inputs / os.fsdecode(source))
        assert all(Path(p).is_file() for p in summary["outputs"])
        assert os.fsencode(Path(summary["outputs"][0]).name) == stem + b".csv"
    record = json.loads(named(out, BROKEN + b".failed.json").read_bytes().decode("utf-8"))
    assert os.fsencode(record["input"]).endswith(BROKEN + b".mp4")
    assert "not a readable video" in record["error"]


def test_nova_and_ssi_headers_show_the_bytes(corpus):
    header = named(corpus["out"], VIDEO + b".valence.annotation").read_bytes().decode("utf-8")
    assert 'role="clip\\xff\\xfe"' in header and "on clip\\xff\\xfe.mp4" in header
    stream = named(corpus["root"] / "det", VIDEO + b".stream").read_bytes().decode("utf-8")
    assert "<stream" in stream


def test_the_report_is_utf8_with_the_names_escaped(corpus):
    out = corpus["out"]
    index = (out / "index.csv").read_bytes().decode("utf-8").splitlines()
    assert any("/in/clip\\xff\\xfe.mp4,,ok," in line for line in index)
    assert any("/in/bad\\xff.mp4,,failed," in line for line in index)
    page = (out / "report.html").read_bytes().decode("utf-8")
    assert "in/clip\\xff\\xfe.mp4" in page and "in/still\\xe9.png" in page
    assert "clip%FF%FE.csv" in page  # the link: the file's own bytes, percent-encoded
    # The typed tables (the parquet extra) hold the names as index.csv shows them.
    pq = pytest.importorskip("pyarrow.parquet")
    frames = pq.read_table(out / "frames.parquet").to_pydict()
    assert any(name.endswith("/in/clip\\xff\\xfe.mp4") for name in frames["input"])
    assert "clip\\xff\\xfe.csv" in set(frames["csv"])
    inputs = pq.read_table(out / "index.parquet").column("input").to_pylist()
    assert any(name.endswith("/in/bad\\xff.mp4") for name in inputs)


def test_detect_writes_box_streams_named_with_the_same_bytes(corpus):
    proc = corpus["detected"]
    assert proc.returncode == 1 and "in/clip\\xff\\xfe.mp4 -> " in proc.stdout
    names = names_in(corpus["root"] / "det")
    for stem in (VIDEO, IMAGE, b"normal"):
        assert {stem + b".stream", stem + b".stream~", stem + b".keypoints.stream"} <= names


def test_render_reads_and_writes_a_video_whose_name_is_not_utf8(corpus, monkeypatch, tmp_path):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    video = named(corpus["in"], VIDEO + b".mp4")
    output = named(tmp_path, b"r\xe9.mp4")
    proc = run_cli("render", video, "--results-dir", corpus["out"], "-o", output, "-q")
    assert "-> " in proc.stdout and "r\\xe9.mp4" in proc.stdout
    with MediaReader(output) as reader:
        assert sum(1 for _ in reader) == 4
    assert names_in(tmp_path) == {b"r\xe9.mp4"}  # no link, no part file left


def test_evaluate_reads_images_from_a_folder_whose_name_is_not_utf8(
    corpus, standin_weights, tmp_path
):
    images = named(tmp_path, b"Bilder\xe9")
    images.mkdir()
    shutil.copy(corpus["root"] / "face.png", images / "face.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("image,expression,valence,arousal\nface.png,1,0.5,0.2\n")
    report = named(tmp_path, b"report\xff.json")
    run_cli("evaluate", labels, "--images", images, "--weights", standin_weights[8], *MODEL,
            "-o", report)  # fmt: skip
    assert json.loads(report.read_text(encoding="utf-8"))["counts"]["used"] == 1


def test_opencv_opens_names_it_cannot_take_through_a_link_it_removes(tmp_path, monkeypatch):
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    video = make_sample(tmp_path, name="take", width=64, height=48, fps=10.0, seconds=0.3,
                        gap=None).video  # fmt: skip
    monkeypatch.chdir(tmp_path)
    plain = "take.mp4"
    with opencv_name(plain) as name:
        assert name == plain
    for odd in (os.fsdecode(b"take\xff.mp4"), "take:2.mp4"):  # ':' reads as an FFmpeg protocol
        shutil.copy(video, odd)
        with MediaReader(odd) as reader:
            assert reader.info.path == Path(odd) and sum(1 for _ in reader) == 3
    assert os.listdir(tmp_path / "tmp") == []


def test_names_show_their_bytes_and_json_gives_them_back():
    name = os.fsdecode(b"in/caf\xc3\xa9 \xff\xfe.mp4")  # UTF-8 kept, the rest escaped
    assert shown_name(name) == "in/café \\xff\\xfe.mp4"
    assert shown_name("plain.mp4") == "plain.mp4"
    text = json_escaped(json.dumps({"input": name}, ensure_ascii=False))
    assert "\\udcff\\udcfe" in text and json.loads(text)["input"] == name
    assert os.fsencode(json.loads(text.encode("utf-8"))["input"]).endswith(b" \xff\xfe.mp4")
