"""`emonet evaluate`: label files, class mapping, cleaning, and an end-to-end run whose numbers
must equal a direct computation from the model's outputs on the same crops."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats
from skimage import data as skimage_data

from emonet_cli.errors import EmonetError, FormatError
from emonet_cli.evaluate.affectnet import class_index, fails_cleaning
from emonet_cli.evaluate.labels import LabelRow, read_labels, select_rows
from emonet_cli.evaluate.scoring import evaluate, evaluation_report, format_table
from emonet_cli.faces.align import affine_from_box, affine_full_frame, crop_face
from emonet_cli.models.emonet.checkpoint import load_model
from emonet_cli.models.emonet.inference import Predictor
from emonet_cli.models.predictions import Predictions
from emonet_cli.outputs.writers import write_json

REPO = Path(__file__).resolve().parent.parent
AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,"
    "expression,valence,arousal"
)


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- label files --------------------------------------------------------------------------------


def landmarks_text(points: np.ndarray) -> str:
    return ";".join(f"{v:.2f}" for v in points.reshape(-1))


def test_affectnet_box_comes_from_the_landmarks_else_the_face_rectangle(tmp_path):
    points = np.random.default_rng(0).uniform(100, 200, (68, 2))
    points[5] = (90.5, 150)
    points[9] = (150, 80.25)
    points[30] = (210, 150)
    points[60] = (150, 230)
    path = write_text(
        tmp_path / "affectnet.csv",
        f"{AFFECTNET_HEADER}\n"
        f'1/a.jpg,10,20,300,400,"{landmarks_text(points)}",1,0.5,0.25\n'
        "2/b.png,10,20,300,400,,6,-0.5,0.75\n"
        "3/c.png,,,,,,10,-2,-2\n",
    )
    with_landmarks, with_rectangle, without_box = read_labels(path)
    assert with_landmarks == LabelRow(2, "1/a.jpg", 1, 0.5, 0.25, (90.5, 80.25, 210.0, 230.0))
    assert with_rectangle == LabelRow(3, "2/b.png", 6, -0.5, 0.75, (10.0, 20.0, 310.0, 420.0))
    assert without_box == LabelRow(4, "3/c.png", 10, None, None, None)


def test_affectnet_file_without_header(tmp_path):
    points = np.tile([[1.0, 2.0], [3.0, 5.0]], (34, 1))
    path = write_text(
        tmp_path / "validation.csv", f"x/y.jpg,0,0,9,9,{landmarks_text(points)},3,0.1,0.9\n"
    )
    assert read_labels(path) == [LabelRow(1, "x/y.jpg", 3, 0.1, 0.9, (1.0, 2.0, 3.0, 5.0))]


def test_simple_layout_with_header_in_any_order_and_optional_box(tmp_path):
    path = write_text(
        tmp_path / "faces.csv",
        "valence,arousal,expression,image,x1,y1,x2,y2\n"
        "0.25,-0.5,2,faces/one.png,1,2,30,40\n"
        "\n"
        "-2,0.5,0,faces/two.jpg,,,,\n",
    )
    assert read_labels(path) == [
        LabelRow(2, "faces/one.png", 2, 0.25, -0.5, (1.0, 2.0, 30.0, 40.0)),
        LabelRow(4, "faces/two.jpg", 0, None, 0.5, None),
    ]


@pytest.mark.parametrize(
    "text",
    ["a.png,1,0.5,0.5\nb.png,0,0,0.1\n", "a.png,1,0.5,0.5,0,0,10,10\nb.png,0,0,0.1,,,,\n"],
)
def test_simple_layout_without_header(tmp_path, text):
    rows = read_labels(write_text(tmp_path / "faces.csv", text))
    assert [(row.image, row.expression, row.valence, row.arousal) for row in rows] == [
        ("a.png", 1, 0.5, 0.5),
        ("b.png", 0, 0.0, 0.1),
    ]
    assert rows[1].box is None


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ("c.png,1,0.5", "expected 4 columns"),
        ("c.png,one,0.5,0.5", "not an AffectNet id"),
        ("c.png,11,0.5,0.5", "not an AffectNet id"),
        ("c.png,1,high,0.5", "not a number"),
        ("c.png,1,nan,0.5", "not a finite number"),
        ("c.png,1,1.5,0.5", "outside"),
        (",1,0.5,0.5", "image path is empty"),
    ],
)
def test_bad_simple_rows_name_file_and_line(tmp_path, bad_row, message):
    path = write_text(
        tmp_path / "faces.csv", f"image,expression,valence,arousal\na.png,1,0.5,0.5\n{bad_row}\n"
    )
    with pytest.raises(FormatError, match=message) as caught:
        read_labels(path)
    assert f"{path}, line 3" in str(caught.value)


@pytest.mark.parametrize(
    "bad_row, message",
    [
        ("c.png,1,0.5,0.5,0,0,10,", "all of x1,y1,x2,y2"),
        ("c.png,1,0.5,0.5,10,0,10,10", "is empty"),
    ],
)
def test_bad_boxes_name_file_and_line(tmp_path, bad_row, message):
    path = write_text(
        tmp_path / "faces.csv", f"image,expression,valence,arousal,x1,y1,x2,y2\n{bad_row}\n"
    )
    with pytest.raises(FormatError, match=message) as caught:
        read_labels(path)
    assert f"{path}, line 2" in str(caught.value)


def test_bad_landmarks_and_headers(tmp_path):
    short = write_text(
        tmp_path / "short.csv", f'{AFFECTNET_HEADER}\na.jpg,0,0,9,9,"1;2;3;4",1,0.5,0.5\n'
    )
    with pytest.raises(FormatError, match=r"short.csv, line 2: facial_landmarks has 4 numbers"):
        read_labels(short)
    no_image = write_text(tmp_path / "no_image.csv", "file,expression,valence,arousal\n")
    with pytest.raises(FormatError, match="line 1: header row has missing image"):
        read_labels(no_image)
    unknown = write_text(tmp_path / "unknown.csv", "a,b,c\n")
    with pytest.raises(FormatError, match="expected 9 columns"):
        read_labels(unknown)
    with pytest.raises(FormatError, match="cannot read label file"):
        read_labels(tmp_path / "absent.csv")


# --- class mapping and cleaning -----------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, eight, five",
    [
        (0, 0, 0),
        (1, 1, 1),
        (2, 2, 2),
        (3, 3, 3),
        (4, 4, None),
        (5, 5, None),
        (6, 6, 4),  # anger is class 4 of the 5-class model, as in the published loader
        (7, 7, None),
        (8, None, None),
        (9, None, None),
        (10, None, None),
    ],
)
def test_class_mapping(expression, eight, five):
    assert class_index(expression, 8) == eight
    assert class_index(expression, 5) == five


@pytest.mark.parametrize(
    "expression, valence, arousal, dropped",
    [
        (0, 0.1, 0.1, False),  # neutral: weak affect is kept
        (0, 0.2, 0.0, True),  # ... intensity 0.2 is not
        (0, -0.5, 0.5, True),
        (1, 0.5, 0.3, False),  # happy
        (1, 0.0, 0.6, True),  # ... needs positive valence
        (1, 0.2, 0.0, True),  # ... and intensity above 0.2
        (1, 0.21, 0.0, False),
        (2, -0.5, -0.1, False),  # sad
        (2, 0.0, -0.6, True),
        (2, -0.2, 0.0, True),
        (3, 0.3, 0.7, False),  # surprise
        (3, 0.7, 0.0, True),  # ... needs positive arousal
        (3, 0.0, 0.2, True),
        (4, -0.4, 0.6, False),  # fear: negative valence and positive arousal
        (4, 0.0, 0.3, False),  # ... zero valence still counts
        (4, -0.3, 0.0, False),  # ... and zero arousal
        (4, 0.1, 0.6, True),
        (4, -0.6, -0.1, True),
        (4, -0.2, 0.0, True),  # ... intensity 0.2 is too weak
        (5, -0.5, 0.2, False),  # disgust
        (5, 0.0, 0.5, True),
        (5, -0.3, 0.0, True),  # ... its threshold is 0.3
        (5, -0.31, 0.0, False),
        (6, -0.5, 0.6, False),  # anger
        (6, -0.7, 0.0, True),
        (6, 0.0, 0.2, True),
        (7, -0.4, 0.1, False),  # contempt
        (7, 0.0, 0.5, True),
        (7, -0.2, 0.0, True),
    ],
)
def test_cleaning_rules(expression, valence, arousal, dropped):
    assert fails_cleaning(expression, valence, arousal) is dropped


def test_row_selection_counts_every_skip_reason_and_stops_at_the_limit():
    rows = [
        LabelRow(2, "neutral.png", 0, 0.1, 0.0),
        LabelRow(3, "none.png", 8, 0.1, 0.2),
        LabelRow(4, "fear.png", 4, -0.4, 0.6),
        LabelRow(5, "missing.png", 1, None, None),
        LabelRow(6, "loud-neutral.png", 0, 0.6, 0.6),
        LabelRow(7, "anger.png", 6, -0.5, 0.6),
        LabelRow(8, "sad.png", 2, -0.5, -0.1),
    ]
    five = select_rows(rows, 5)
    assert [(s.row.image, s.target) for s in five.samples] == [
        ("neutral.png", 0),
        ("anger.png", 4),
        ("sad.png", 2),
    ]
    assert (five.rows, five.skipped) == (
        7,
        {"expression_not_scored": 2, "missing_valence_arousal": 1, "cleaning": 1},
    )
    assert five.skipped_expressions == {8: 1, 4: 1}
    assert five.cleaned_out == {0: 1}

    everything = select_rows(rows, 8, cleaned=False)
    assert [s.row.line for s in everything.samples] == [2, 4, 6, 7, 8]

    limited = select_rows(rows, 8, limit=2)
    assert [s.row.line for s in limited.samples] == [2, 4]
    assert limited.rows == 3


# --- end to end ---------------------------------------------------------------------------------

FACE_BOX = np.array([170.0, 58.0, 272.0, 178.0])  # the astronaut's face in skimage's image

# (file name, expression, valence, arousal, kind): kind "frame" is a jittered window of the
# astronaut with its face box, "crop" a jittered face crop without a box.
READABLE = [
    ("f0.png", 0, 0.05, -0.1, "frame"),
    ("f1.jpg", 1, 0.7, 0.3, "crop"),
    ("f2.png", 2, -0.6, -0.2, "frame"),
    ("f3.jpg", 3, 0.2, 0.8, "frame"),
    ("f4.png", 4, -0.4, 0.7, "crop"),
    ("f5.jpg", 6, -0.5, 0.6, "frame"),
]
UNREADABLE = [("garbage.jpg", 1, 0.5, 0.2), ("absent.png", 2, -0.5, -0.3)]
# Skipped before any image is read, so none of these files exists.
LABEL_SKIPPED = [
    ("none.png", 8, 0.1, 0.1),
    ("uncertain.png", 9, 0.3, -0.1),
    ("noface.png", 10, -2, -2),
    ("no-affect.png", 1, -2, -2),
    ("sad-but-positive.png", 2, 0.4, -0.3),
]


@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory):
    """The images, both label layouts, and the crop each readable row must be scored on."""
    root = tmp_path_factory.mktemp("faces")
    (root / "set").mkdir()
    astronaut = skimage_data.astronaut()
    rng = np.random.default_rng(7)
    crops, boxes = {}, {}
    for name, _, _, _, kind in READABLE:
        dx, dy = rng.integers(-12, 13, 2)
        if kind == "frame":
            x0, y0 = 40 + dx, 20 + dy
            image = astronaut[y0 : y0 + 400, x0 : x0 + 400]
            box = FACE_BOX - [x0, y0, x0, y0] + rng.uniform(-4, 4, 4)
        else:
            x1, y1, x2, y2 = (FACE_BOX + [dx, dy, dx, dy]).astype(int)
            image, box = astronaut[y1:y2, x1:x2], None
        path = root / "set" / name
        cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR))
        written = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        height, width = written.shape[:2]
        matrix = affine_full_frame(width, height) if box is None else affine_from_box(box)
        crops[name], boxes[name] = crop_face(written, matrix), box
    (root / "set" / "garbage.jpg").write_bytes(rng.bytes(500))

    rows = [(name, e, v, a) for name, e, v, a, _ in READABLE[:3]]
    rows += UNREADABLE[:1] + LABEL_SKIPPED[:3]
    rows += [(name, e, v, a) for name, e, v, a, _ in READABLE[3:]]
    rows += UNREADABLE[1:] + LABEL_SKIPPED[3:]

    simple = ["image,expression,valence,arousal,x1,y1,x2,y2"]
    affectnet = [AFFECTNET_HEADER]
    for index, (name, expression, valence, arousal) in enumerate(rows):
        box = boxes.get(name)
        corners = ",,," if box is None else ",".join(repr(float(v)) for v in box)
        simple.append(f"set/{name},{expression},{valence},{arousal},{corners}")
        rectangle, landmarks = ",,,", ""
        if box is not None and index % 2:
            x1, y1, x2, y2 = (float(v) for v in box)
            rectangle = f"{x1!r},{y1!r},{x2 - x1!r},{y2 - y1!r}"
        elif box is not None:
            points = rng.uniform(box[:2], box[2:], (68, 2))
            points[0], points[1] = box[:2], box[2:]
            landmarks = ";".join(repr(float(v)) for v in points.reshape(-1))
        affectnet.append(f'set/{name},{rectangle},"{landmarks}",{expression},{valence},{arousal}')
    (root / "simple.csv").write_text("\n".join(simple) + "\n")
    (root / "affectnet.csv").write_text("\n".join(affectnet) + "\n")
    return root, crops


@pytest.fixture(scope="module")
def models(standin_weights):
    return {n: load_model(standin_weights[n]) for n in (5, 8)}


def direct_scores(model, crops: dict[str, np.ndarray], nclass: int, flip: bool) -> dict:
    """Labels, predictions and scores computed straight from the model on the expected crops."""
    scored = [row for row in READABLE if class_index(row[1], nclass) is not None]
    stack = np.stack([crops[row[0]] for row in scored])
    predictor = Predictor(model, device="cpu", precision="fp32")
    plain = predictor(stack)
    valence, arousal = plain.valence, plain.arousal
    if flip:
        mirrored = predictor(np.ascontiguousarray(stack[:, :, ::-1]))
        valence = (valence + mirrored.valence) / 2
        arousal = (arousal + mirrored.arousal) / 2
    valence, arousal = np.clip(valence, -1, 1), np.clip(arousal, -1, 1)
    truth_class = np.array([class_index(row[1], nclass) for row in scored])
    predicted_class = plain.expression.argmax(axis=1)
    result = {
        "truth_class": truth_class,
        "predicted_class": predicted_class,
        "valence": valence,
        "arousal": arousal,
        "metrics": {"expression": {"acc": float(np.mean(truth_class == predicted_class))}},
    }
    for dimension, predicted, column in (("valence", valence, 2), ("arousal", arousal, 3)):
        truth = np.array([row[column] for row in scored])
        covariance = np.mean((truth - truth.mean()) * (predicted - predicted.mean()))
        result["metrics"][dimension] = {
            "ccc": 2
            * covariance
            / (truth.var() + predicted.var() + (truth.mean() - predicted.mean()) ** 2),
            "pcc": stats.pearsonr(truth, predicted)[0],
            "rmse": math.sqrt(np.mean((truth - predicted) ** 2)),
            "sagr": float(np.mean(np.sign(truth) == np.sign(predicted))),
        }
    return result


def assert_scores_match(reported: dict, expected: dict) -> None:
    """The reported metrics against `direct_scores`' (`expected`). The model's float32 outputs
    differ in their last bits between batch make-ups and CPUs (up to ~1e-6 of their size); a
    correlation (PCC, CCC) of predictions that hardly vary, as the stand-in weights' do,
    magnifies that by up to 2 / their spread, so the tolerance of those follows the spread."""
    for dimension, scores in expected["metrics"].items():
        magnified = 0.0
        if dimension in ("valence", "arousal"):
            predicted = np.asarray(expected[dimension], dtype=np.float64)
            noise = 1e-6 * np.abs(predicted).max()
            magnified = 2 * noise / max(predicted.std(), noise, 1e-12)
        for name, value in scores.items():
            tolerance = 1e-5 + (magnified if name in ("pcc", "ccc") else 0.0)
            assert reported[dimension][name] == pytest.approx(value, abs=tolerance), (
                dimension,
                name,
            )


class HalvesPredictor:
    """A stand-in for Predictor whose outputs are simple functions of the crop: valence and the
    class follow the brightness of the left half (so the mirror changes them), arousal that of
    the top half (which the mirror keeps). Records the size of every batch it is given."""

    nclass = 8
    device = "cpu"
    precision = "fp32"

    def __init__(self):
        self.batch_sizes = []

    def __call__(self, crops: np.ndarray) -> Predictions:
        self.batch_sizes.append(len(crops))
        left, top = (brightness(crops, half) for half in ("left", "top"))
        count = len(crops)
        return Predictions(
            expression=np.eye(self.nclass)[halves_class(left)],
            valence=halves_valence(left),
            arousal=20 * (top - 0.53),
            landmarks=np.zeros((count, 68, 2)),
            embedding=np.zeros((count, 256)),
        )


def brightness(crops: np.ndarray, half: str) -> np.ndarray:
    region = crops[:, :, :128] if half == "left" else crops[:, :128]
    return region.reshape(len(crops), -1).mean(axis=1) / 255


def halves_class(left: np.ndarray) -> np.ndarray:
    return (left * 400).astype(int) % 8


def halves_valence(left: np.ndarray) -> np.ndarray:
    return 40 * (left - 0.53)  # spreads the astronaut crops beyond [-1, 1]


@pytest.mark.parametrize("flip", [True, False])
def test_expression_from_the_crop_affect_averaged_with_the_mirror_and_clipped(labelled_set, flip):
    root, crops = labelled_set
    predictor = HalvesPredictor()
    evaluation = evaluate(
        read_labels(root / "simple.csv"), root, predictor, flip=flip, batch_size=4
    )

    stack = np.stack([crops[row[0]] for row in READABLE])
    mirrored = stack[:, :, ::-1]
    valence = halves_valence(brightness(stack, "left"))
    if flip:
        valence = (valence + halves_valence(brightness(mirrored, "left"))) / 2
    assert np.abs(valence).max() > 1
    np.testing.assert_allclose(evaluation.predicted_valence, np.clip(valence, -1, 1), atol=1e-9)
    arousal = np.clip(20 * (brightness(stack, "top") - 0.53), -1, 1)
    np.testing.assert_allclose(evaluation.predicted_arousal, arousal, atol=1e-9)
    crop_class = halves_class(brightness(stack, "left"))
    assert (crop_class != halves_class(brightness(mirrored, "left"))).any()
    np.testing.assert_array_equal(evaluation.predicted_expression, crop_class)
    np.testing.assert_array_equal(evaluation.true_expression, [row[1] for row in READABLE])
    np.testing.assert_array_equal(evaluation.true_valence, [row[2] for row in READABLE])
    # batches of 4 rows, one unreadable in each: 3 faces, with their mirrors in the same batch
    assert predictor.batch_sizes == ([6, 6] if flip else [3, 3])


@pytest.mark.parametrize("flip", [True, False])
def test_evaluation_equals_direct_computation(labelled_set, models, flip, tmp_path):
    root, crops = labelled_set
    loaded = models[8]
    predictor = Predictor(loaded.model, device="cpu", precision="fp32")
    evaluation = evaluate(
        read_labels(root / "simple.csv"), root, predictor, flip=flip, batch_size=4
    )
    expected = direct_scores(loaded.model, crops, 8, flip)

    np.testing.assert_array_equal(evaluation.true_expression, expected["truth_class"])
    np.testing.assert_array_equal(evaluation.predicted_expression, expected["predicted_class"])
    np.testing.assert_allclose(evaluation.predicted_valence, expected["valence"], atol=1e-5)
    np.testing.assert_allclose(evaluation.predicted_arousal, expected["arousal"], atol=1e-5)
    assert_scores_match(evaluation.scores(), expected)

    report_path = tmp_path / "report.json"
    write_json(
        report_path,
        evaluation_report(
            evaluation,
            labels="simple.csv",
            images_root=root,
            weights_path=loaded.path,
            weights_sha256=loaded.sha256,
        ),
    )
    report = json.loads(report_path.read_text())
    assert report["counts"]["rows"] == len(READABLE) + len(UNREADABLE) + len(LABEL_SKIPPED)
    assert report["counts"]["used"] == len(READABLE)
    assert report["counts"]["skipped"] == {
        "expression_not_scored": 3,
        "missing_valence_arousal": 1,
        "cleaning": 1,
        "unreadable_image": 2,
    }
    assert [item["path"] for item in report["counts"]["unreadable_images"]] == [
        str(root / "set" / "garbage.jpg"),
        str(root / "set" / "absent.png"),
    ]
    assert (report["flip"], report["cleaned"], report["precision"]) == (flip, True, "fp32")
    assert report["weights"] == {"path": str(loaded.path), "sha256": loaded.sha256}
    assert_scores_match(report["metrics"], expected)
    confusion = np.zeros((8, 8), dtype=int)
    np.add.at(confusion, (expected["truth_class"], expected["predicted_class"]), 1)
    assert report["confusion_matrix"]["counts"] == confusion.tolist()
    for c, name in enumerate(report["class_names"]):
        labelled = expected["truth_class"] == c
        recall = report["per_class_recall"][name]
        if labelled.any():
            assert recall == pytest.approx(np.mean(expected["predicted_class"][labelled] == c))
        else:
            assert recall is None

    table = format_table(evaluation)
    acc = expected["metrics"]["expression"]["acc"]
    assert "this run" in table and f"{acc:.3f}" in table


def test_cli_scores_affectnet_layout_with_five_classes(
    labelled_set, models, standin_weights, tmp_path
):
    root, crops = labelled_set
    report_path = tmp_path / "report.json"
    command = [sys.executable, "-m", "emonet_cli", "evaluate", str(root / "affectnet.csv")]
    command += ["--images", str(root), "--weights", str(standin_weights[5]), "--nclass", "5"]
    command += [
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--batch-size",
        "4",
        "-o",
        str(report_path),
    ]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=120, env=os.environ.copy()
    )
    assert done.returncode == 0, done.stderr

    expected = direct_scores(models[5].model, crops, 5, flip=True)
    report = json.loads(report_path.read_text())
    assert_scores_match(report["metrics"], expected)
    assert report["nclass"] == 5
    assert report["class_names"][4] == "Anger"
    assert report["counts"]["used"] == len(expected["truth_class"])
    assert report["counts"]["skipped"]["expression_not_scored"] == 4  # fear joins 8, 9, 10
    assert report["counts"]["skipped_expressions"] == {
        "Fear": 1,
        "None": 1,
        "Uncertain": 1,
        "No-Face": 1,
    }
    assert len(report["counts"]["unreadable_images"]) == 2

    assert "this run" in done.stdout and "Anger (id 6)" in done.stdout
    assert "garbage.jpg" in done.stderr and "absent.png" in done.stderr


def test_nothing_to_score_is_an_error(labelled_set, models):
    root, _ = labelled_set
    predictor = Predictor(models[8].model, device="cpu", precision="fp32")
    rows = [LabelRow(1, "none.png", 8, 0.1, 0.1), LabelRow(2, "set/garbage.jpg", 1, 0.5, 0.5)]
    with pytest.raises(EmonetError, match=r"no face could be scored: .*garbage\.jpg \(line 2\)"):
        evaluate(rows, root, predictor)
    with pytest.raises(EmonetError, match="all 1 label rows were skipped"):
        evaluate(rows[:1], root, predictor)


def test_a_box_off_its_image_is_skipped_and_named(labelled_set, models):
    root, _ = labelled_set
    predictor = Predictor(models[8].model, device="cpu", precision="fp32")
    on = LabelRow(1, "set/f0.png", 0, 0.05, -0.1, (100.0, 60.0, 220.0, 200.0))
    off = LabelRow(2, "set/f0.png", 0, 0.05, -0.1, (900.0, 60.0, 1000.0, 200.0))
    evaluation = evaluate([on, off], root, predictor)
    assert [(item.line, item.reason) for item in evaluation.unreadable] == [
        (2, "the box lies outside the image")
    ]
    with pytest.raises(EmonetError, match=r"the box lies outside the image: .*f0\.png \(line 2\)"):
        evaluate([off], root, predictor)
