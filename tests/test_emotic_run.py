"""`--model emotic` end to end: an image list of person boxes and a video with face boxes
through `emonet analyze` (every file, the numbers against a forward pass of our network on the
reference preprocessing, the category annotations read back by DISCOVER's own library), and
`emonet evaluate --model emotic` against an independent computation of mean AP and VAD MAE."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import skimage.data
import skimage.io
import torch
from cli_helpers import run_cli
from discover_utils.data.handler.file_handler import FileHandler

from emonet_cli.demo import make_sample
from emonet_cli.faces.boxfiles import read_boxes
from emonet_cli.models.emotic import preprocess
from emonet_cli.models.emotic.metrics import CATEGORIES
from emonet_cli.models.emotic.safeload import load_emotic
from emonet_cli.models.registry import family
from emonet_cli.outputs.results import category_slug, csv_columns

ENTRY = family("emotic")
# skimage's pictures with a person box each (x1, y1, x2, y2); the astronaut twice: two people.
PEOPLE = [
    ("astronaut.png", (120.0, 10.0, 400.0, 512.0)),
    ("astronaut.png", (0.0, 200.0, 200.0, 512.0)),
    ("coffee.png", (100.0, 50.0, 500.0, 380.0)),
    ("chelsea.png", (60.0, 20.0, 400.0, 300.0)),
    ("rocket.png", (200.0, 40.0, 360.0, 420.0)),
]


def rows_of(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def reference_outputs(weights, image: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    """Scores (26,) and VAD (3,) on 1-10 for one person: the reference's preprocessing
    (preprocess.inputs) and our network, outside the pipeline."""
    model = load_emotic(weights)
    context, body = preprocess.inputs(image, box)
    with torch.no_grad():
        scores, vad = model(torch.from_numpy(context[None]), torch.from_numpy(body[None]))
    return scores[0].numpy(), vad[0].numpy()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    for name in dict.fromkeys(name for name, _ in PEOPLE):
        skimage.io.imsave(folder / name, getattr(skimage.data, name[:-4])()[..., :3])
    listing = folder / "people.txt"
    listing.write_text("".join(f"{name} {' '.join(map(str, box))}\n" for name, box in PEOPLE))
    return folder, listing


@pytest.fixture(scope="module")
def analysed_pictures(pictures, family_weights, tmp_path_factory):
    folder, listing = pictures
    out = tmp_path_factory.mktemp("pictures-out")
    run_cli(
        "analyze", folder, "--bbox", listing, "--model", "emotic", "--weights",
        family_weights["emotic"], "--device", "cpu", "--precision", "fp32", "-o", out, "--quiet",
    )  # fmt: skip
    return out


def test_each_listed_person_equals_the_network_on_the_reference_inputs(
    pictures, analysed_pictures, family_weights
):
    folder, _ = pictures
    weights = family_weights["emotic"]
    thresholds = load_emotic(weights).thresholds.numpy()
    astronaut = [box for name, box in PEOPLE if name == "astronaut.png"]
    files = {
        "coffee": [("coffee.csv", PEOPLE[2][1])],
        "astronaut": [(f"astronaut.face{k}.csv", box) for k, box in enumerate(astronaut, 1)],
    }
    for stem, people in files.items():
        image = skimage.io.imread(folder / f"{stem}.png")[..., :3]
        for name, box in people:
            (row,) = rows_of(analysed_pictures / name)
            assert list(row) == csv_columns((), ENTRY)
            scores, vad = reference_outputs(weights, image, box)
            ours = np.array([float(row[f"score_{category_slug(c)}"]) for c in CATEGORIES])
            np.testing.assert_allclose(ours, scores, rtol=1e-5, atol=1e-5)
            native = [float(row[f"{d}_1_10"]) for d in preprocess.VAD_NAMES]
            np.testing.assert_allclose(native, vad, rtol=1e-5, atol=1e-5)
            signed = [float(row[d]) for d in preprocess.VAD_NAMES]
            np.testing.assert_allclose(signed, (vad - 5.5) / 4.5, rtol=1e-5, atol=1e-5)
            held = [c for c, s, t in zip(CATEGORIES, scores, thresholds) if s > t]
            assert row["categories"].split(";") == held and 0 < len(held) < 26
    # An image listed on two lines holds two people; each gets its files and the overview.
    faces = rows_of(analysed_pictures / "astronaut.faces.csv")
    assert [row["face"] for row in faces] == ["1", "2"]


def test_the_summary_records_the_family_its_categories_and_thresholds(analysed_pictures):
    summary = json.loads((analysed_pictures / "coffee.emonet.json").read_text())
    assert summary["model"] == "emotic" and summary["box_kind"] == "person"
    assert summary["categories"] == list(CATEGORIES) and summary["native_scale"] == [1.0, 10.0]
    assert len(summary["category_thresholds"]) == 26
    assert set(summary["category_frames"]) == set(CATEGORIES)
    assert sum(summary["category_frames"].values()) > 0
    assert "expression_histogram" not in summary and "mean_dominance" in summary
    # A picture is no time series: its results are the CSV and the summary.
    assert sorted(p.name for p in analysed_pictures.glob("coffee.*")) == [
        "coffee.csv",
        "coffee.emonet.json",
    ]


@pytest.fixture(scope="module")
def analysed_video(family_weights, tmp_path_factory):
    folder = tmp_path_factory.mktemp("emotic-video")
    sample = make_sample(folder, width=160, height=120, fps=10.0, seconds=1.2, gap=(0.4, 0.6))
    out = folder / "out"
    run_cli(
        "analyze", sample.video, "--bbox", sample.boxes, "--box-kind", "face", "--model",
        "emotic", "--weights", family_weights["emotic"], "--device", "cpu", "--precision",
        "fp32", "--batch-size", "4", "-o", out, "--quiet",
    )  # fmt: skip
    return sample, out


def test_a_video_with_face_boxes_writes_every_file(analysed_video, family_weights):
    sample, out = analysed_video
    stem = sample.video.stem
    expected = {f"{stem}.csv", f"{stem}.emonet.json"}
    for name in ("valence", "arousal", "dominance", *map(category_slug, CATEGORIES)):
        expected |= {f"{stem}.{name}.annotation", f"{stem}.{name}.annotation~"}
    assert {p.name for p in out.iterdir()} == expected
    rows = rows_of(out / f"{stem}.csv")
    assert len(rows) == sample.frames
    assert [row["face"] == "1" for row in rows] == list(sample.face_frames)
    # Every one of those files is what makes the results complete for --skip-existing.
    again = run_cli(
        "analyze", sample.video, "--bbox", sample.boxes, "--box-kind", "face", "--model",
        "emotic", "-o", out, "--skip-existing",
    )  # fmt: skip
    assert again.stdout.startswith("skipped ")
    (out / f"{stem}.happiness.annotation").unlink()
    redone = run_cli(
        "analyze", sample.video, "--bbox", sample.boxes, "--box-kind", "face", "--model",
        "emotic", "--weights", family_weights["emotic"], "--device", "cpu", "--precision",
        "fp32", "-o", out, "--skip-existing", "--quiet",
    )  # fmt: skip
    assert not redone.stdout.startswith("skipped ")
    assert (out / f"{stem}.happiness.annotation").exists()


def test_face_boxes_are_grown_into_upper_bodies(analysed_video, family_weights):
    sample, out = analysed_video
    frame = 0
    capture = cv2.VideoCapture(str(sample.video))
    ok, bgr = capture.read()
    capture.release()
    assert ok
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    boxes = read_boxes(sample.boxes, (image.shape[1], image.shape[0]))
    body = preprocess.face_to_body_box(boxes.boxes[frame], image.shape[1], image.shape[0])
    scores, _ = reference_outputs(family_weights["emotic"], image, body)
    row = rows_of(out / f"{sample.video.stem}.csv")[frame]
    ours = np.array([float(row[f"score_{category_slug(c)}"]) for c in CATEGORIES])
    np.testing.assert_allclose(ours, scores, rtol=1e-5, atol=1e-5)
    as_body, _ = reference_outputs(family_weights["emotic"], image, boxes.boxes[frame])
    assert np.abs(ours - as_body).max() > 1e-3  # the face box itself gives other numbers
    summary = json.loads((out / f"{sample.video.stem}.emonet.json").read_text())
    assert summary["box_kind"] == "face"


def test_discover_reads_the_category_and_dominance_annotations(analysed_video):
    sample, out = analysed_video
    stem = sample.video.stem
    rows = rows_of(out / f"{stem}.csv")
    held = {c: [c in row["categories"].split(";") for row in rows] for c in CATEGORIES}
    category = max(CATEGORIES, key=lambda c: sum(held[c]))  # one that holds in many frames
    loaded = FileHandler().load(out / f"{stem}.{category_slug(category)}.annotation")
    assert loaded.annotation_scheme.classes["0"]["name"] == category
    times = [round(float(row["time"]) * 1000) for row, h in zip(rows, held[category]) if h]
    assert loaded.data["from"].tolist() == times
    assert (loaded.data["id"] == 0).all() and (
        (0 <= loaded.data["conf"]) & (loaded.data["conf"] <= 1)
    ).all()
    dominance = FileHandler().load(out / f"{stem}.dominance.annotation")
    expected = [float(row["dominance"]) for row in rows]
    np.testing.assert_allclose(dominance.data["score"], expected, rtol=1e-6, equal_nan=True)


def independent_average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """AP by its definition: the mean over the positives of the precision among the people
    ranked at or above each (no ties in these scores)."""
    order = np.argsort(-scores)
    hits = labels[order].astype(bool)
    ranks = np.flatnonzero(hits) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks)) if len(ranks) else 0.0


def test_evaluate_matches_an_independent_mean_ap_and_vad_error(
    pictures, analysed_pictures, family_weights, tmp_path
):
    folder, _ = pictures
    rng = np.random.default_rng(7)
    labels = rng.random((len(PEOPLE), 26)) < 0.4
    vad = rng.uniform(1, 10, (len(PEOPLE), 3)).round(1)
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "x1", "y1", "x2", "y2", "categories", *preprocess.VAD_NAMES])
        for (name, box), held, values in zip(PEOPLE, labels, vad):
            names = ";".join(c for c, h in zip(CATEGORIES, held) if h)
            writer.writerow([name, *box, names, *values])
    report_path = tmp_path / "report.json"
    proc = run_cli(
        "evaluate", tmp_path / "labels.csv", "--images", folder, "--model", "emotic",
        "--weights", family_weights["emotic"], "--device", "cpu", "--precision", "fp32",
        "--batch-size", "2", "-o", report_path, "--quiet",
    )  # fmt: skip
    report = json.loads(report_path.read_text())
    # The predictions, from analyze's CSVs of the same people.
    csvs = ["astronaut.face1.csv", "astronaut.face2.csv", "coffee.csv", "chelsea.csv", "rocket.csv"]
    rows = [rows_of(analysed_pictures / name)[0] for name in csvs]
    scores = np.array([[float(r[f"score_{category_slug(c)}"]) for c in CATEGORIES] for r in rows])
    predicted = np.array([[float(r[f"{d}_1_10"]) for d in preprocess.VAD_NAMES] for r in rows])
    expected = [independent_average_precision(labels[:, k], scores[:, k]) for k in range(26)]
    np.testing.assert_allclose(list(report["average_precision"].values()), expected, atol=1e-6)
    assert report["mean_average_precision"] == pytest.approx(np.mean(expected), abs=1e-6)
    errors = np.abs(predicted - vad).mean(axis=0)
    reported = report["vad_mean_absolute_error"]
    assert [reported[d] for d in preprocess.VAD_NAMES] == pytest.approx(errors, abs=1e-4)
    assert report["people"] == report["vad_people"] == len(PEOPLE)
    assert f"{report['mean_average_precision']:.4f}" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--full-frame"], "--model emotic needs person boxes"),
        (["--landmarks"], "--model emotic gives no landmarks"),
        (["--nclass", "8"], "no expression classes"),
    ],
)
def test_what_emotic_cannot_do_is_one_line(args, message, pictures, family_weights, tmp_path):
    folder, listing = pictures
    proc = run_cli(
        "analyze", folder / "coffee.png", "--bbox", listing, "--model", "emotic", "--weights",
        family_weights["emotic"], "-o", tmp_path, *args, check=False,
    )  # fmt: skip
    assert proc.returncode in (1, 2)
    said = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(said) == 1 and message in said[0], proc.stderr  # beside click's usage hint
    assert not list(tmp_path.iterdir())


def test_render_plot_and_a_bad_label_file_say_why(
    pictures, analysed_video, family_weights, tmp_path
):
    folder, _ = pictures
    proc = run_cli("render", folder / "coffee.png", "--model", "emotic", check=False)
    assert proc.returncode == 2 and "'emotic' is not one of" in proc.stderr
    sample, out = analysed_video
    proc = run_cli("plot", out / f"{sample.video.stem}.csv", "-o", tmp_path / "p.png", check=False)
    assert proc.returncode == 1 and "results of a model without expressions" in proc.stderr
    assert not (tmp_path / "p.png").exists()
    bad = tmp_path / "labels.csv"
    bad.write_text(
        "image,x1,y1,x2,y2,categories,valence,arousal,dominance\ncoffee.png,1,1,9,9,Joy,,,\n"
    )
    proc = run_cli(
        "evaluate", bad, "--images", folder, "--model", "emotic", "--weights",
        family_weights["emotic"], check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and f"{bad}:2: 'Joy' is no EMOTIC category" in proc.stderr


def test_evaluate_says_why_nothing_was_scored_and_names_the_image(
    pictures, family_weights, tmp_path
):
    """A box off a readable image is not an unreadable image: the message says which."""
    folder, _ = pictures
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "image,x1,y1,x2,y2,categories,valence,arousal,dominance\n"
        "coffee.png,5000,5000,5100,5100,Peace,,,\n"
    )
    proc = run_cli(
        "evaluate", labels, "--images", folder, "--model", "emotic", "--weights",
        family_weights["emotic"], "-o", tmp_path / "report.json", check=False,
    )  # fmt: skip
    said = [line for line in proc.stderr.splitlines() if line.startswith("emonet: error:")]
    assert proc.returncode == 1 and len(said) == 1, proc.stderr
    assert "the box lies outside the image: coffee.png (line 2)" in said[0]
    assert "unreadable" not in said[0]
    assert not (tmp_path / "report.json").exists()
