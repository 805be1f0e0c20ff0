"""`emonet report`: a folder analysed by the real CLI (one face from a box stream, two tracked
people, a broken video in a sub-folder, and EMOTIC), its index.csv checked against the CSVs
recomputed here with the standard library, and report.html opened in a real headless Chromium
(its DOM and a screenshot)."""

from __future__ import annotations

import base64
import csv
import html.parser
import json
import os
import re
import shutil
import statistics
import subprocess
from pathlib import Path
from urllib.parse import unquote

import cv2
import numpy as np
import pytest
from cli_helpers import run_cli
from frames_check import assert_frames_equal_csvs

from emonet_cli.constants import default_class_colors
from emonet_cli.demo import make_people_sample, make_sample
from emonet_cli.media.frames import MediaInfo
from emonet_cli.outputs.failures import failure_path, read_failure
from emonet_cli.outputs.results import ResultBatch, category_slug
from emonet_cli.outputs.writers import CsvWriter, OutputOptions, WriterContext
from emonet_cli.run.one_input import Outcome
from emonet_cli.run.runner import recorded
from emonet_cli.views.report import figures as report_figures
from emonet_cli.views.report import report_results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt: chromium)")
BROKEN = b"this is not a video" * 40


@pytest.fixture(scope="module")
def results(tmp_path_factory, family_weights) -> dict:
    """`emonet analyze -r` over solo.mp4 (its box stream beside it), people/pair.mp4 and
    people/broken.mp4; then EMOTIC on pair.mp4 with two people tracked; `emonet report`."""
    inputs = tmp_path_factory.mktemp("inputs")
    make_sample(inputs, name="solo", width=320, height=240, fps=10, seconds=1.2, gap=(0.4, 0.8))
    pair = make_people_sample(inputs / "people", name="pair", width=320, height=180, seconds=2)
    (inputs / "people" / "broken.mp4").write_bytes(BROKEN)
    out = tmp_path_factory.mktemp("results")
    common = ("--device", "cpu", "--precision", "fp32", "-q")
    proc = run_cli(
        "analyze", inputs, "-r", "--weights", family_weights["emonet"], "-o", out, *common,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # the broken input failed, the others not
    run_cli(
        "analyze", pair.video, "--model", "emotic", "--weights", family_weights["emotic"],
        "--max-faces", "2", "-o", out / "emotic", *common,
    )  # fmt: skip
    report = run_cli("report", out)
    return {"out": out, "analyze_stderr": proc.stderr, "report_stdout": report.stdout}


def index_rows(out: Path) -> list[dict[str, str]]:
    with open(out / "index.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def row_of(rows, name: str, model: str = "emonet", person: str = "") -> dict[str, str]:
    found = [
        r
        for r in rows
        if Path(r["input"]).name == name and r["model"] == model and r["person"] == person
    ]
    assert len(found) == 1, (name, model, person, rows)
    return found[0]


def recomputed(csv_paths: list[Path], faces_csv: Path | None = None) -> dict:
    """index.csv's figures from results CSVs, with csv and statistics only: the rows of every
    file pooled (several people), frames with a face from faces_csv where given."""
    frames, face_rows, labels = 0, [], {}
    for path in csv_paths:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        frames = max(frames, len(rows))
        face_rows += [r for r in rows if r["face"] == "1"]
    for r in face_rows:
        names = [r["expression_name"]] if r.get("expression_name") else []
        names += r["categories"].split(";") if r.get("categories") else []
        for name in names:
            labels[name] = labels.get(name, 0) + 1
    figures = {"frames": frames, "frames_with_face": len(face_rows)}
    if faces_csv is not None:
        with open(faces_csv, newline="", encoding="utf-8") as f:
            figures["frames_with_face"] = len({r["frame"] for r in csv.DictReader(f)})
    for dim in ("valence", "arousal", "dominance"):
        if face_rows and dim in face_rows[0]:
            values = [float(r[dim]) for r in face_rows]
            figures[f"mean_{dim}"] = statistics.fmean(values)
            figures[f"std_{dim}"] = statistics.stdev(values)
    figures["shares"] = {category_slug(k): n / len(face_rows) for k, n in labels.items()}
    return figures


def assert_figures(row: dict[str, str], expected: dict) -> None:
    assert int(row["frames"]) == expected["frames"]
    assert int(row["frames_with_face"]) == expected["frames_with_face"]
    assert float(row["face_share"]) == pytest.approx(
        expected["frames_with_face"] / expected["frames"]
    )
    for key, value in expected.items():
        if key.startswith(("mean_", "std_")):
            assert float(row[key]) == pytest.approx(value, rel=1e-12, abs=1e-15), key
    shares = {k[len("share_") :]: v for k, v in row.items() if k.startswith("share_") and v}
    assert set(shares) >= set(expected["shares"])
    for label, share in shares.items():
        assert float(share) == pytest.approx(expected["shares"].get(label, 0.0), abs=1e-15)


def test_index_has_a_row_per_input_and_per_person(results):
    rows = index_rows(results["out"])
    found = sorted((Path(r["input"]).name, r["model"], r["person"], r["status"]) for r in rows)
    assert found == [
        ("broken.mp4", "emonet", "", "failed"),
        ("pair.mp4", "emonet", "", "ok"),
        ("pair.mp4", "emotic", "", "ok"),
        ("pair.mp4", "emotic", "face1", "ok"),
        ("pair.mp4", "emotic", "face2", "ok"),
        ("solo.mp4", "emonet", "", "ok"),
    ]
    assert "(4 inputs, 1 failed, 2 people rows)" in results["report_stdout"]


def test_each_row_equals_its_csv_recomputed(results):
    out = results["out"]
    rows = index_rows(out)
    for name, csv_path in (("solo.mp4", "solo.csv"), ("pair.mp4", "people/pair.csv")):
        row = row_of(rows, name)
        assert row["csv"] == csv_path and row["people"] == "1"
        assert_figures(row, recomputed([out / csv_path]))
    people = [out / "emotic" / f"pair.face{k}.csv" for k in (1, 2)]
    for k, path in enumerate(people, 1):
        person = row_of(rows, "pair.mp4", "emotic", f"face{k}")
        assert person["csv"] == f"emotic/pair.face{k}.csv"
        expected = recomputed([path])
        assert "mean_dominance" in expected
        assert_figures(person, expected)
    pair = row_of(rows, "pair.mp4", "emotic")
    assert pair["people"] == "2" and pair["csv"] == ""  # pooled over its people
    assert_figures(pair, recomputed(people, out / "emotic" / "pair.faces.csv"))


def test_figures_agree_with_each_summary(results):
    out = results["out"]
    rows = index_rows(out)
    for row, summary in (
        (row_of(rows, "solo.mp4"), out / "solo.emonet.json"),
        (row_of(rows, "pair.mp4"), out / "people" / "pair.emonet.json"),
        (row_of(rows, "pair.mp4", "emotic"), out / "emotic" / "pair.emonet.json"),
    ):
        document = json.loads(summary.read_text())
        assert row["record"] == summary.relative_to(out).as_posix()
        assert int(row["frames"]) == document["frames"]
        assert int(row["frames_with_face"]) == document["frames_with_face"]
        for person in document.get("people", [document]):
            name = person.get("person", "")
            mine = row_of(rows, Path(document["input"]).name, document["model"], name)
            # The summary sums the float32 values, the CSV holds them to float32's precision.
            assert float(mine["mean_valence"]) == pytest.approx(person["mean_valence"], rel=1e-6)


def test_frames_parquet_holds_every_row_of_every_csv(results):
    pytest.importorskip("pyarrow")
    counts = assert_frames_equal_csvs(results["out"])
    assert sorted(counts) == ["emotic/pair.face1.csv", "emotic/pair.face2.csv",
                              "people/pair.csv", "solo.csv"]  # fmt: skip
    assert f"frames.parquet ({sum(counts.values())} rows)" in results["report_stdout"]


def test_the_failed_input_is_listed_with_the_error_its_run_recorded(results):
    out = results["out"]
    row = row_of(index_rows(out), "broken.mp4")
    record = out / "people" / "broken.failed.json"
    assert row["record"] == "people/broken.failed.json"
    assert read_failure(record)["error"] == row["error"]
    assert f"emonet: error: {row['error']}" in results["analyze_stderr"]
    assert "broken.mp4" in row["error"] and row["frames"] == "" and row["csv"] == ""


class PageParser(html.parser.HTMLParser):
    """The table rows (class, cells: column -> (data-v, text)), the SVG elements drawn in the
    detail panel and the links there."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self.cell: str | None = None
        self.in_detail = 0
        self.detail_tags: list[tuple[str, dict]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-i" in attrs:
            self.rows.append({"i": int(attrs["data-i"]), "class": attrs["class"].split()})
            self.rows[-1]["cells"] = {}
        elif tag == "td" and self.rows:
            self.cell = attrs["data-col"]
            self.rows[-1]["cells"][self.cell] = [attrs["data-v"], ""]
        if tag == "aside" and attrs.get("id") == "detail":
            self.in_detail = 1
        elif self.in_detail:
            self.in_detail += tag not in ("rect", "line", "circle", "path", "br")
            self.detail_tags.append((tag, attrs))
            if tag == "a":
                self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "td":
            self.cell = None
        elif self.in_detail and tag not in ("rect", "line", "circle", "path", "br"):
            self.in_detail -= 1

    def handle_data(self, data):
        if self.cell is not None:
            self.rows[-1]["cells"][self.cell][1] += data


@pytest.fixture(scope="module")
def browsed(results, tmp_path_factory) -> dict:
    """One headless Chromium run: the page's DOM after its script ran, and a screenshot, with
    the single-face EmoNet input selected, sorted by valence (descending), analysed ones shown."""
    out = results["out"]
    rows = index_rows(out)
    selected = rows.index(row_of(rows, "solo.mp4"))
    shot = tmp_path_factory.mktemp("browser") / "page.png"
    url = (out / "report.html").as_uri() + f"#row={selected}&sort=-mean_valence&show=ok"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", f"--user-data-dir={shot.parent / 'profile'}",
         "--window-size=1400,900", f"--screenshot={shot}", "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    parser = PageParser()
    parser.feed(proc.stdout)
    return {"parser": parser, "shot": shot, "rows": rows, "selected": selected}


@needs_chromium
def test_the_page_names_every_input_and_flags_the_failed_one(browsed):
    parser, rows = browsed["parser"], browsed["rows"]
    assert len(parser.rows) == len(rows)
    for table_row in parser.rows:
        row = rows[table_row["i"]]
        cells = table_row["cells"]
        assert cells["input"][0] == row["input"]
        if not row["person"]:
            assert Path(row["input"]).name in cells["input"][1]  # named as shown
        assert cells["status"][1].split()[0] == row["status"]
        assert (row["status"] == "failed") == ("failed" in table_row["class"])
        # What the script left visible: --show=ok hides the failed input only.
        assert ("hidden" in table_row["class"]) == (row["status"] == "failed")


@needs_chromium
def test_the_table_numbers_equal_index_csv(browsed):
    parser, rows = browsed["parser"], browsed["rows"]
    compared = 0
    for table_row in parser.rows:
        row = rows[table_row["i"]]
        for column, (value, text) in table_row["cells"].items():
            if column in ("input", "status"):
                continue
            assert value == row[column], (column, row)
            if value and column.startswith("mean_"):
                assert float(text) == pytest.approx(float(value), abs=5e-4)
                compared += 1
    assert compared >= 2 * len(rows) - 2  # valence and arousal of every analysed row


@needs_chromium
def test_the_script_sorted_by_valence_and_drew_the_selected_input(browsed):
    parser, rows = browsed["parser"], browsed["rows"]
    heads = [r for r in parser.rows if not rows[r["i"]]["person"]]
    valences = [float(r["cells"]["mean_valence"][0]) for r in heads if "hidden" not in r["class"]]
    assert valences == sorted(valences, reverse=True) and len(valences) == 3
    selected = [r["i"] for r in parser.rows if "selected" in r["class"]]
    assert selected == [browsed["selected"]]
    tags = parser.detail_tags
    classes = [attrs.get("class") for _, attrs in tags]
    assert {"timeline", "circumplex"} <= set(classes)
    assert classes.count("noface") >= 1  # the sample's gap
    drawn = rows[browsed["selected"]]
    assert classes.count("point") == int(drawn["frames_with_face"]) == 8  # a point a face
    assert classes.count("band") >= 1
    assert {Path(unquote(link)).name for link in parser.links} >= {
        "solo.csv",
        "solo.emonet.json",
        "solo.expression.annotation",
        "solo.valence.annotation",
    }


@needs_chromium
def test_the_screenshot_shows_the_table_and_the_timeline(browsed, results):
    image = cv2.cvtColor(cv2.imread(str(browsed["shot"])), cv2.COLOR_BGR2RGB)
    assert image.shape[:2] == (900, 1400)
    packed = (image.astype(np.int32) * [65536, 256, 1]).sum(axis=2)
    assert len(np.unique(packed)) > 50  # not blank
    row = row_of(browsed["rows"], "solo.mp4")
    shares = {k[len("share_") :]: float(v) for k, v in row.items() if k.startswith("share_") and v}
    summary = json.loads((results["out"] / "solo.emonet.json").read_text())
    names = summary["classes"]
    top = max(names, key=lambda name: shares[category_slug(name)])
    band = np.array([int(default_class_colors(names)[names.index(top)][3:][i : i + 2], 16)
                     for i in (0, 2, 4)])  # fmt: skip
    assert (np.abs(image.astype(int) - band).max(axis=2) <= 2).sum() > 1000  # the label band


def test_the_page_is_one_file_that_fetches_nothing(results):
    page = (results["out"] / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<link|<script[^>]*\bsrc=|<img|<iframe|@import|url\(", page)
    assert "http" not in page and "//cdn" not in page
    data = json.loads(re.search(r'id="report-data"[^>]*>(.*?)</script>', page, re.S).group(1))
    links = [link for row in data["rows"] for _, link in row["links"]]
    assert len(links) > 10
    for link in links:
        assert (results["out"] / unquote(link)).is_file(), link


def test_a_page_elsewhere_links_back_to_the_results(results, tmp_path):
    page = tmp_path / "pages" / "overview.html"
    run_cli("report", results["out"], "-o", page)
    text = page.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="report-data"[^>]*>(.*?)</script>', text, re.S).group(1))
    for row in data["rows"]:
        for _, link in row["links"]:
            assert (page.parent / unquote(link)).is_file(), link


def test_the_newer_of_summary_and_failure_record_wins(results, tmp_path):
    folder = tmp_path / "copy"
    folder.mkdir()
    for path in results["out"].glob("solo.*"):
        shutil.copy(path, folder / path.name)
    record = failure_path(Path("/data/solo.mp4"), folder)
    record.write_text(json.dumps({"input": "/data/solo.mp4", "error": "a later run failed"}))
    summary = folder / "solo.emonet.json"
    os.utime(record, ns=(1, summary.stat().st_mtime_ns - 10**9))  # the failure came first
    (row,) = report_results(folder).rows
    assert row.status == "ok"
    os.utime(record, ns=(1, summary.stat().st_mtime_ns + 10**9))  # then the run failed
    (row,) = report_results(folder).rows
    assert (row.status, row.error) == ("failed", "a later run failed")
    assert row.warnings == ["results of an earlier run are there"]


def test_the_runner_records_a_failure_and_clears_it_on_success(tmp_path):
    video = tmp_path / "in" / "clip.mp4"
    video.parent.mkdir()
    video.write_bytes(BROKEN)
    options = OutputOptions(directory=tmp_path / "out")
    failed = Outcome(video, "error", error=f"{video}: not a readable video")
    assert recorded(failed, options, Path("sub")) is failed
    record = tmp_path / "out" / "sub" / "clip.failed.json"
    document = read_failure(record)
    assert document["error"] == failed.error and document["input_file"]["size"] == len(BROKEN)
    assert not list(record.parent.glob(".*part*"))  # written atomically
    recorded(Outcome(video, "skipped"), options, Path("sub"))
    assert record.exists()
    recorded(Outcome(video, "ok"), options, Path("sub"))
    assert not record.exists()


def write_long_csv(path: Path, frames: int, nclass: int = 8) -> None:
    """A results CSV through the analysis' own writer: expression changing every 100 frames,
    no face in frames 1000-1499 and in every 7th frame."""
    rng = np.random.default_rng(7)
    face = (np.arange(frames) % 7 != 0) & ~(
        (np.arange(frames) >= 1000) & (np.arange(frames) < 1500)
    )
    expression = np.where(face, (np.arange(frames) // 100) % nclass, -1)
    probabilities = np.full((frames, nclass), 0.05, dtype=np.float32)
    batch = ResultBatch(
        frame=np.arange(frames),
        time=np.arange(frames) / 25.0,
        face=face,
        face_conf=np.where(face, 0.9, 0.0).astype(np.float32),
        expression=expression,
        probabilities=probabilities,
        valence=np.where(face, rng.uniform(-1, 1, frames), np.nan).astype(np.float32),
        arousal=np.where(face, rng.uniform(-1, 1, frames), np.nan).astype(np.float32),
        landmarks=np.full((frames, 68, 2), np.nan, dtype=np.float32),
        embedding=np.full((frames, 256), np.nan, dtype=np.float32),
    )
    info = MediaInfo(path, 320, 240, 25.0, frames, is_image=False)
    writer = CsvWriter(path, WriterContext(info, nclass, OutputOptions(), {}))
    writer.add(batch)
    writer.close()


def test_a_long_csv_read_in_chunks_gives_exact_figures_and_a_small_picture(tmp_path, monkeypatch):
    monkeypatch.setattr(report_figures, "CHUNK_ROWS", 333)  # many chunks, none aligned to bins
    path = tmp_path / "long.csv"
    frames = 5003
    write_long_csv(path, frames)
    names = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
    read = report_figures.read_results_figures(path, names)
    columns = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
    face = columns["face"] == 1
    valence = columns["valence"][face]
    assert read.figures.frames == frames and read.figures.faces == face.sum()
    assert read.figures.dimensions["valence"].average == pytest.approx(valence.mean(), rel=1e-12)
    assert read.figures.dimensions["valence"].std == pytest.approx(valence.std(ddof=1), rel=1e-12)
    picture = read.picture
    bins = np.frombuffer(base64.b64decode(picture["bins"]), np.uint8).reshape(-1, 5)
    points = np.frombuffer(base64.b64decode(picture["points"]), np.uint8)
    assert 100 < len(bins) <= report_figures.TIMELINE_BINS
    assert 0 < len(points) // 3 <= report_figures.CIRCUMPLEX_POINTS
    width = -(-frames // len(bins))  # rows per bin
    for k in (0, 5, len(bins) // 2, len(bins) - 1):
        rows = slice(k * width, min((k + 1) * width, frames))
        share = face[rows].mean()
        assert bins[k, 0] == round(255 * share)
        if share:
            mean = columns["valence"][rows][face[rows]].mean()
            assert bins[k, 1] == round((mean + 1) * 100)
    gap = slice(1000 // width + 1, 1500 // width)  # bins inside the no-face span
    assert (bins[gap, 0] == 0).all() and (bins[gap, 1:] == 255).all()
    assert picture["t0"] == 0.0 and picture["t1"] == pytest.approx((frames - 1) / 25.0)


def test_no_results_is_one_error_line_and_a_broken_csv_one_failed_row(tmp_path, results):
    proc = run_cli("report", tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("emonet: error: ") and proc.stderr.count("\n") == 1
    assert "no results of emonet analyze" in proc.stderr
    for path in results["out"].glob("solo.*"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "solo.csv").write_text("frame,time,face\n0,0.0\n")
    run_cli("report", tmp_path)
    (row,) = index_rows(tmp_path)
    assert row["status"] == "failed" and "solo.csv" in row["error"]
