"""`emonet report`'s frames.parquet and index.parquet: a folder mixing EmoNet's 8 classes, a
fine-tuned model's 7 and EMOTIC's two people (CSVs written by the analysis' own CsvWriter), a
damaged CSV and a failed input, reported by the real CLI; the table read back with pyarrow,
pandas, polars and DuckDB against the CSVs (csv module), and the examples of docs/report.md
run as written."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import WITHOUT_PYARROW, cli_env, run_cli
from frames_check import assert_frames_equal_csvs, csv_rows, index_rows

from emonet_cli.constants import CLASS_NAMES, Classes
from emonet_cli.formats.fileio import host_tag
from emonet_cli.media.frames import MediaInfo
from emonet_cli.models.registry import FAMILIES
from emonet_cli.outputs.failures import record_failure
from emonet_cli.outputs.results import ResultBatch
from emonet_cli.outputs.writers import CsvWriter, OutputOptions, WriterContext
from emonet_cli.views.report import frames as report_frames
from emonet_cli.views.report import report_results

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

DOC = Path(__file__).resolve().parent.parent / "docs" / "report.md"
FINETUNED = ("Neutral", "Happy", "Sad", "Pain", "Calm", "Anger", "Boredom")
CATEGORIES = FAMILIES["emotic"].categories
WARNING = (
    "emonet: warning: pyarrow is not installed: frames.parquet and index.parquet not written "
    "(pip install 'emonet-cli[parquet]')\n"
)


def write_results(path: Path, frames: int, seed: int, family: str = "emonet", classes=None,
                  person: str | None = None) -> None:  # fmt: skip
    """A results CSV through the analysis' own writer: every 5th frame without a face."""
    rng = np.random.default_rng(seed)
    nclass = len(classes) if classes else 0
    face = np.arange(frames) % 5 != 3
    probabilities = rng.dirichlet(np.ones(max(nclass, 1)), frames).astype(np.float32)[:, :nclass]
    probabilities[~face] = np.nan
    values = np.where(face[:, None], rng.uniform(-1, 1, (frames, 3)), np.nan).astype(np.float32)
    batch = ResultBatch(
        frame=np.arange(frames),
        time=np.arange(frames) / 25.0 + 1000.0,  # microseconds after 1,000 s: not float32's
        face=face,
        face_conf=np.where(face, rng.uniform(0.6, 1, frames), 0).astype(np.float32),
        expression=np.where(face, np.nan_to_num(probabilities).argmax(1), -1) if nclass else
        np.full(frames, -1),
        probabilities=probabilities,
        valence=values[:, 0],
        arousal=values[:, 1],
        landmarks=np.full((frames, 68, 2), np.nan, dtype=np.float32),
        embedding=np.full((frames, 256), np.nan, dtype=np.float32),
        person=person,
    )  # fmt: skip
    if family == "emotic":
        batch.dominance = values[:, 2]
        scores = rng.normal(0, 0.3, (frames, len(CATEGORIES))).astype(np.float32)
        batch.categories = np.where(face[:, None], scores, np.nan).astype(np.float32)
        batch.category_set = face[:, None] & (scores > 0.3)
    info = MediaInfo(path, 320, 240, 25.0, frames, is_image=False)
    names = Classes.named(classes) if classes else Classes((), ())
    options = OutputOptions(family=family)
    writer = CsvWriter(path, WriterContext(info, nclass, options, {}, person=person, classes=names))
    writer.add(batch)
    writer.close()


def summary(folder: Path, stem: str, **fields) -> None:
    document = {"input": f"/data/{stem}.mp4", "model": "emonet", "frames": 0, **fields}
    (folder / f"{stem}.emonet.json").write_text(json.dumps(document), encoding="utf-8")


def make_corpus(out: Path) -> Path:
    """emonet/solo (8 classes, 40 frames), finetuned/solo (7 classes of its own, 30), emotic/
    pair (two people, 25 frames), broken/clip (a CSV cut short in a row), failed/gone (its
    record only)."""
    for name in ("emonet", "finetuned", "emotic", "broken", "failed"):
        (out / name).mkdir(parents=True)
    write_results(out / "emonet" / "solo.csv", 40, 1, classes=CLASS_NAMES[8])
    summary(out / "emonet", "solo", classes=list(CLASS_NAMES[8]), frames=40)
    write_results(out / "finetuned" / "solo.csv", 30, 2, classes=FINETUNED)
    summary(out / "finetuned", "solo", classes=list(FINETUNED), frames=30)
    for k in (1, 2):
        write_results(out / "emotic" / f"pair.face{k}.csv", 25, 2 + k, "emotic", person=f"face{k}")
    with open(out / "emotic" / "pair.faces.csv", "w", newline="") as f:
        f.write("frame,time,face,x1,y1,x2,y2,conf\n")
        f.writelines(f"{i},{i / 25:.6f},1,0,0,10,10,0.9\n" for i in range(25) if i % 5 != 3)
    people = [{"person": f"face{k}"} for k in (1, 2)]
    summary(out / "emotic", "pair", model="emotic", classes=[], categories=list(CATEGORIES),
            frames=25, people=people)  # fmt: skip
    write_results(out / "broken" / "clip.csv", 10, 5, classes=CLASS_NAMES[8])
    with open(out / "broken" / "clip.csv", "a") as f:
        f.write("10,0.4,1,0.9\n")  # a row cut short, as by a full disk
    summary(out / "broken", "clip", classes=list(CLASS_NAMES[8]), frames=11)
    record_failure(Path("/data/gone.mp4"), out / "failed", "/data/gone.mp4: not a video", "emonet")
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    out = make_corpus(tmp_path_factory.mktemp("corpus") / "results")
    proc = run_cli("report", out)
    return {"out": out, "stdout": proc.stdout, "stderr": proc.stderr}


def copy_of(corpus: dict, tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    shutil.copytree(corpus["out"], folder)
    for name in ("frames.parquet", "index.parquet", "index.csv", "report.html"):
        (folder / name).unlink()
    return folder


def test_the_table_equals_the_csvs_value_for_value(corpus):
    out = corpus["out"]
    counts = assert_frames_equal_csvs(out)
    assert counts == {"emonet/solo.csv": 40, "finetuned/solo.csv": 30,
                      "emotic/pair.face1.csv": 25, "emotic/pair.face2.csv": 25}  # fmt: skip
    assert f"{out / 'frames.parquet'} (120 rows)" in corpus["stdout"]
    assert corpus["stderr"] == ""
    valence = pq.read_table(out / "frames.parquet").column("valence").to_pylist()
    assert sum(math.isnan(v) for v in valence) == 24  # every 5th frame: no face, NaN not null


def test_its_schema_is_the_union_of_the_labels_typed(corpus):
    schema = pq.read_schema(corpus["out"] / "frames.parquet")
    names = pa.dictionary(pa.int32(), pa.string())
    assert schema.names[:4] == ["input", "person", "model", "csv"]
    kinds = {
        "frame": pa.int64(), "time": pa.float64(), "face": pa.bool_(), "expression": pa.int64(),
        "expression_name": names, "categories": names, "valence": pa.float32(),
        "dominance": pa.float32(), "valence_1_10": pa.float32(), "score_doubt_confusion":
        pa.float32(), "prob_contempt": pa.float32(), "prob_boredom": pa.float32(),
    }  # fmt: skip
    for column, kind in kinds.items():
        assert schema.field(column).type == kind, column
    labels = [name for name in schema.names if name.startswith(("prob_", "score_"))]
    assert schema.names[-len(labels) :] == labels  # last: scores, then probabilities
    probabilities = {name[5:] for name in labels if name.startswith("prob_")}
    assert probabilities == {n.lower() for n in CLASS_NAMES[8] + FINETUNED}  # 11: the union
    assert len([name for name in labels if name.startswith("score_")]) == len(CATEGORIES)


def test_a_column_a_model_lacks_is_null_and_nan_means_no_face(corpus):
    table = pq.read_table(corpus["out"] / "frames.parquet").to_pydict()
    rows = [dict(zip(table, values)) for values in zip(*table.values())]
    emonet = [r for r in rows if r["csv"] == "emonet/solo.csv"]
    finetuned = [r for r in rows if r["csv"] == "finetuned/solo.csv"]
    emotic = [r for r in rows if r["model"] == "emotic"]
    assert all(r["prob_boredom"] is None and r["dominance"] is None for r in emonet)
    assert all(r["prob_contempt"] is None and r["prob_pain"] is not None for r in finetuned)
    assert all(r["expression"] is None and r["prob_happy"] is None for r in emotic)
    assert all(r["score_fear"] is None and r["categories"] is None for r in emonet + finetuned)
    no_face = [r for r in emonet + finetuned if not r["face"]]
    assert len(no_face) == 14
    assert all(math.isnan(r["prob_happy"]) and r["expression_name"] is None for r in no_face)
    assert all(r["expression"] == -1 for r in no_face)
    assert {r["expression_name"] for r in finetuned if r["face"]} <= set(FINETUNED)


def test_people_are_named_and_failed_or_damaged_inputs_have_no_rows(corpus):
    out = corpus["out"]
    table = pq.read_table(out / "frames.parquet", columns=["input", "person", "model"])
    people = {tuple(r.values()) for r in table.to_pylist()}
    assert people == {("/data/solo.mp4", "", "emonet"), ("/data/pair.mp4", "face1", "emotic"),
                      ("/data/pair.mp4", "face2", "emotic")}  # fmt: skip
    rows = index_rows(out)
    failed = {Path(r["input"]).name: r for r in rows if r["status"] == "failed"}
    assert sorted(failed) == ["clip.mp4", "gone.mp4"]
    assert "broken/clip.csv" in failed["clip.mp4"]["error"]


def test_index_parquet_is_index_csv_typed(corpus):
    out = corpus["out"]
    table = pq.read_table(out / "index.parquet")
    rows = index_rows(out)
    assert table.column_names == list(rows[0])
    assert table.schema.field("frames").type == pa.int64()
    assert table.schema.field("people").type == pa.int64()
    assert table.schema.field("mean_valence").type == pa.float64()
    assert table.schema.field("share_boredom").type == pa.float64()
    assert table.schema.field("error").type == pa.string()
    for column, values in table.to_pydict().items():
        for text, value in zip((r[column] for r in rows), values):
            if isinstance(value, str):
                assert value == text, column
            else:  # numbers: the very value index.csv spells; null where it is empty
                assert (value is None) == (text == "") and (value is None or value == float(text))


def doc_examples() -> dict[str, str]:
    """The Python examples of docs/report.md that read frames.parquet, by the package used."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    found = {}
    for block in blocks:
        package = re.match(r"import (\w+)\b", block)
        if package and "frames.parquet" in block:
            found[package.group(1)] = block
    assert sorted(found) == ["duckdb", "pandas"]
    return found


def expected_means(out: Path) -> dict[tuple[str, str], tuple[int, float]]:
    """Frames with a face and mean valence per input and person, from the CSVs (csv module)."""
    found = {}
    for row in index_rows(out):
        if row["status"] == "ok" and row["csv"]:
            _, rows = csv_rows(out / row["csv"])
            valence = [float(r["valence"]) for r in rows if r["face"] == "1"]
            key = (row["input"], row["person"])
            count, total = found.get(key, (0, 0.0))
            found[key] = (count + len(valence), total + sum(valence))
    return {key: (count, total / count) for key, (count, total) in found.items()}


def test_the_documented_pandas_and_duckdb_examples_run_and_agree(corpus, tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    pytest.importorskip("duckdb")
    (tmp_path / "results").symlink_to(corpus["out"])
    monkeypatch.chdir(tmp_path)
    expected = expected_means(corpus["out"])
    # The two solo inputs share a name (/data/solo.mp4: both models analysed it).
    assert len(expected) == 3
    examples = doc_examples()
    scope: dict = {}
    exec(examples["duckdb"], scope)
    got = {(input, person): (frames, valence) for input, person, frames, valence in
           scope["per_person"]}  # fmt: skip
    assert got.keys() == expected.keys()
    for key, (frames, valence) in expected.items():
        assert got[key][0] == frames and got[key][1] == pytest.approx(valence, rel=1e-6)
    scope = {}
    exec(examples["pandas"], scope)
    means = scope["per_person"]
    assert sorted(means.index) == sorted(expected)
    for key, (_, valence) in expected.items():
        assert means.loc[key, "valence"] == pytest.approx(valence, rel=1e-6)


def test_polars_reads_it_with_its_types(corpus):
    pl = pytest.importorskip("polars")
    frames = pl.read_parquet(corpus["out"] / "frames.parquet")
    assert frames.height == 120
    assert frames.schema["valence"] == pl.Float32 and frames.schema["face"] == pl.Boolean
    assert frames.schema["frame"] == pl.Int64 and frames.schema["time"] == pl.Float64
    with_face = frames.filter(pl.col("face") & (pl.col("csv") == "emonet/solo.csv"))
    _, rows = csv_rows(corpus["out"] / "emonet" / "solo.csv")
    valence = [float(r["valence"]) for r in rows if r["face"] == "1"]
    assert with_face["valence"].mean() == pytest.approx(np.mean(valence), rel=1e-6)


def test_row_groups_hold_whole_inputs_and_part_files_are_swept(corpus, tmp_path, monkeypatch):
    folder = copy_of(corpus, tmp_path)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = folder / f".frames.parquet.{host_tag()}.{gone.pid}.abcd1234.part"
    live = folder / f".frames.parquet.{host_tag()}.{os.getppid()}.efgh5678.part"
    stale.write_bytes(b"PAR1 of a killed report")
    live.write_bytes(b"PAR1 of a report still writing")
    monkeypatch.setattr(report_frames, "ROW_GROUP_ROWS", 50)
    report = report_results(folder)
    assert report.frames.rows == 120
    parquet = pq.ParquetFile(folder / "frames.parquet")
    groups = [parquet.read_row_group(k, columns=["csv"]) for k in range(parquet.num_row_groups)]
    csvs = [g.column("csv").unique().to_pylist() for g in groups]
    # 40 | 25 + 25 | 30 (index.csv's order): a CSV never split when it fits, two together
    # when they fit together
    assert csvs == [["emonet/solo.csv"], ["emotic/pair.face1.csv", "emotic/pair.face2.csv"],
                    ["finetuned/solo.csv"]]  # fmt: skip
    assert report.frames.row_groups == 3
    # The killed writer's part file is swept, the live one's kept, none of this one's stays.
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == [live.name]
    assert_frames_equal_csvs(folder)


def test_a_csv_whose_rows_do_not_fit_the_types_is_left_out_with_a_warning(corpus, tmp_path):
    folder = copy_of(corpus, tmp_path)
    path = folder / "emonet" / "solo.csv"
    header, rows = csv_rows(path)
    # A column the report does not know: whole numbers in the rows it samples, then not.
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*header, "blinks"])
        for i in range(300):
            row = rows[i % len(rows)]
            writer.writerow([*(row[c] for c in header), "2.5" if i == 250 else str(i % 3)])
    summary(folder / "emonet", "solo", classes=list(CLASS_NAMES[8]), frames=300)
    proc = run_cli("report", folder)
    assert proc.stderr.startswith(f"emonet: warning: {path}: left out of frames.parquet (")
    assert proc.stderr.count("\n") == 1
    row = next(r for r in index_rows(folder) if r["csv"] == "emonet/solo.csv")
    assert row["status"] == "ok" and "not in frames.parquet (" in row["warnings"]
    table = pq.read_table(folder / "frames.parquet")
    assert table.schema.field("blinks").type == pa.int64()
    assert "emonet/solo.csv" not in table.column("csv").to_pylist()
    assert table.num_rows == 80


def test_unknown_columns_are_typed_from_their_values(corpus, tmp_path):
    folder = copy_of(corpus, tmp_path)
    path = folder / "finetuned" / "solo.csv"
    header, rows = csv_rows(path)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*header, "blinks", "gaze", "speaker"])
        for i, row in enumerate(rows):
            extra = [str(i % 4), "NaN" if i % 2 else "0.25", "" if i % 3 else "Ann"]
            writer.writerow([*(row[c] for c in header), *extra])
    report_results(folder)
    table = pq.read_table(folder / "frames.parquet")
    schema = table.schema
    assert schema.field("blinks").type == pa.int64()
    assert schema.field("gaze").type == pa.float32()
    assert schema.field("speaker").type == pa.dictionary(pa.int32(), pa.string())
    rows = [r for r in table.select(["csv", "blinks", "speaker"]).to_pylist()
            if r["csv"] == "finetuned/solo.csv"]  # fmt: skip
    assert [r["blinks"] for r in rows] == [i % 4 for i in range(30)]
    assert [r["speaker"] for r in rows] == [None if i % 3 else "Ann" for i in range(30)]
    assert_frames_equal_csvs(folder)


def test_without_pyarrow_one_warning_and_the_rest_as_before(corpus, tmp_path):
    folder = copy_of(corpus, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYARROW, "report", str(folder)],
        capture_output=True, text=True, env=cli_env(), timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == WARNING
    index = (corpus["out"] / "index.csv").read_text().replace(str(corpus["out"]), str(folder))
    assert (folder / "index.csv").read_text() == index  # as with pyarrow
    assert (folder / "report.html").exists()
    assert not (folder / "frames.parquet").exists() and not (folder / "index.parquet").exists()
    assert "parquet" not in proc.stdout
    # The blocker works: pyarrow, which this interpreter has, cannot be imported under it.
    blocked = WITHOUT_PYARROW.replace("from emonet_cli.cli import main\nmain()", "import pyarrow")
    check = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True)
    assert check.returncode == 1 and "No module named 'pyarrow'" in check.stderr


def test_no_frames_skips_frames_parquet_only(corpus, tmp_path):
    folder = copy_of(corpus, tmp_path)
    proc = run_cli("report", folder, "--no-frames")
    assert proc.stderr == ""
    assert not (folder / "frames.parquet").exists()
    assert (folder / "index.parquet").exists() and (folder / "index.csv").exists()
    assert proc.stdout.splitlines() == [
        f"{folder / 'index.csv'} (5 inputs, 2 failed, 2 people rows)",
        str(folder / "index.parquet"),
        str(folder / "report.html"),
    ]
    assert os.listdir(folder).count("frames.parquet") == 0
