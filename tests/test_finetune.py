"""`emonet finetune`: label layouts, the loss against numpy, augmentation through the aligner,
training on a generated set with the stand-in checkpoint (accuracy rises, validation scored as
`emonet evaluate` scores, the FAN untouched), FER2013's layout end to end through the CLI and
`emonet analyze`, and a resumed run equal to an uninterrupted one.

EmoNet costs ~34 GFLOP a face at 256x256 whatever the image size, so the sets are tiny: a few
dozen FAN passes in all (the FAN's features are computed once where nothing is augmented)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from click.testing import CliRunner
from scipy import stats
from skimage import data as skimage_data

from emonet_cli.cli import cli
from emonet_cli.constants import PALETTE
from emonet_cli.demo import make_sample
from emonet_cli.errors import EmonetError, FormatError, WeightsError
from emonet_cli.evaluate.labels import LabelRow, read_labels
from emonet_cli.evaluate.scoring import evaluate, evaluation_report, face_matrix, format_table
from emonet_cli.faces.align import crop_face
from emonet_cli.finetune.data import (
    FER2013_CLASSES,
    SKIP_NOT_A_CLASS,
    SKIP_TEST_SPLIT,
    Augmentation,
    CropLoader,
    Example,
    batch_indices,
    read_faces,
    split,
)
from emonet_cli.finetune.losses import LossWeights, emonet_loss
from emonet_cli.finetune.train import TrainingSettings, finetune
from emonet_cli.finetune.trainer import Trainer
from emonet_cli.formats.annotations import read_annotation
from emonet_cli.models.emonet.checkpoint import METADATA_KEY, load_model, load_state_dict
from emonet_cli.models.emonet.inference import Predictor
from emonet_cli.models.emonet.model import EMOTION_BRANCH, EmoNet
from emonet_cli.outputs.results import read_results
from emonet_cli.views.plot import class_colors

FACE_BOX = np.array([170.0, 58.0, 272.0, 178.0])  # the astronaut's face in skimage's image
BANDS = (0.35, 0.75, 1.25)  # brightness of each class: the label is a function of the image


def is_branch(key: str) -> bool:
    return key.startswith(EMOTION_BRANCH)


def astronaut_set(
    root: Path, name: str, per_class: int, seed: int, side: int = 56, affect: bool = True
) -> Path:
    """`per_class` jittered, colour-shifted crops of the astronaut per brightness band, as
    side x side PNGs, in the simple layout: class = band, valence and arousal linear in it
    (or empty without `affect`); every second face has a box, the others are whole-image
    crops."""
    rng = np.random.default_rng(seed)
    astronaut = skimage_data.astronaut()
    (root / "faces").mkdir(parents=True, exist_ok=True)
    lines = ["image,expression,valence,arousal,x1,y1,x2,y2"]
    for c, band in enumerate(BANDS):
        for k in range(per_class):
            margin = rng.uniform(20, 40)
            dx, dy = rng.uniform(-8, 8, 2)
            x1, y1, x2, y2 = FACE_BOX + [dx - margin, dy - margin, dx + margin, dy + margin]
            window = astronaut[int(y1) : int(y2), int(x1) : int(x2)].astype(np.float32)
            window *= band * rng.uniform(0.95, 1.05) * rng.uniform(0.9, 1.1, 3)
            window = np.clip(window, 0, 255).astype(np.uint8)
            image = cv2.resize(window, (side, side), interpolation=cv2.INTER_AREA)
            file = f"faces/{name}_{c}_{k}.png"
            cv2.imwrite(str(root / file), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            valence = -0.6 + 0.6 * c + rng.uniform(-0.05, 0.05)
            arousal = 0.4 - 0.3 * c + rng.uniform(-0.05, 0.05)
            box = ",,,"
            if k % 2:
                scale = side / (x2 - x1)
                inset = (margin - 4) * scale
                box = ",".join(f"{v:.2f}" for v in (inset, inset, side - inset, side - inset))
            affect_labels = f"{valence:.3f},{arousal:.3f}" if affect else ","
            lines.append(f"{file},{c},{affect_labels},{box}")
    path = root / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def fer2013_csv(path: Path, train_per_class: int, val: int, test: int, seed: int = 3) -> Path:
    """FER2013's own layout: 48x48 grayscale astronaut faces as pixel strings, brighter with
    the class, `Usage` giving the split."""
    rng = np.random.default_rng(seed)
    gray = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2GRAY).astype(np.float32)
    rows = [(c, "Training") for c in range(7) for _ in range(train_per_class)]
    rows += [(c, "PublicTest") for c in range(val)] + [(c, "PrivateTest") for c in range(test)]
    lines = ["emotion,pixels,Usage"]
    for c, usage in rows:
        dx, dy = rng.uniform(-6, 6, 2)
        x1, y1, x2, y2 = (FACE_BOX + [dx - 10, dy - 10, dx + 10, dy + 10]).astype(int)
        face = cv2.resize(gray[y1:y2, x1:x2], (48, 48), interpolation=cv2.INTER_AREA)
        face = np.clip(face * (0.4 + 0.15 * c), 0, 255).astype(np.uint8)
        lines.append(f"{c},{' '.join(map(str, face.ravel()))},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the loss -----------------------------------------------------------------------------------


def test_loss_equals_a_direct_numpy_computation():
    rng = np.random.default_rng(0)
    n, nclass = 9, 4
    head = rng.normal(size=(n, nclass + 2))
    target = rng.integers(0, nclass, n)
    valence, arousal = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    valence[[1, 4]] = np.nan  # faces without valence
    arousal[:] = np.nan
    arousal[[2, 7]] = (0.3, -0.2)  # two labelled faces: all three terms
    weights = LossWeights(expression=0.7, rmse=1.3, pcc=0.4, ccc=2.0)
    class_weights = np.array([1.0, 2.0, 0.5, 1.5])

    logits = head[:, :nclass]
    log_softmax = logits - logits.max(1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(1, keepdims=True))
    w = class_weights[target]
    cross_entropy = -(w * log_softmax[np.arange(n), target]).sum() / w.sum()
    affect = 0.0
    for k, truth in enumerate((valence, arousal)):
        labelled = ~np.isnan(truth)
        t, p = truth[labelled], head[labelled, nclass + k]
        ccc = 2 * np.cov(t, p, bias=True)[0, 1] / (t.var() + p.var() + (t.mean() - p.mean()) ** 2)
        affect += weights.rmse * np.sqrt(np.mean((p - t) ** 2))
        affect += weights.pcc * (1 - stats.pearsonr(t, p)[0]) + weights.ccc * (1 - ccc)

    total, parts = emonet_loss(
        torch.tensor(head, dtype=torch.float64),
        torch.tensor(target),
        torch.tensor(valence),
        torch.tensor(arousal),
        weights,
        torch.tensor(class_weights),
    )
    assert parts["expression"] == pytest.approx(cross_entropy, rel=1e-9)
    assert parts["affect"] == pytest.approx(affect, rel=1e-6)
    assert float(total) == pytest.approx(weights.expression * cross_entropy + affect, rel=1e-6)

    one = np.full(n, np.nan)
    one[3] = 0.5  # a single labelled face: RMSE only (a correlation needs two)
    _, parts = emonet_loss(
        torch.tensor(head), torch.tensor(target), torch.tensor(one), torch.tensor(one)
    )
    expected = abs(head[3, nclass] - 0.5) + abs(head[3, nclass + 1] - 0.5)
    assert parts["affect"] == pytest.approx(expected, abs=1e-6)


# --- label files, classes, split, crops ---------------------------------------------------------


def test_class_names_come_from_the_option_the_layout_or_the_ids(tmp_path):
    simple = tmp_path / "simple.csv"
    simple.write_text("image,expression,valence,arousal\na.png,0,0.5,\nb.png,3,,\n")
    faces = read_faces(simple)
    assert faces.class_names == ("class0", "class1", "class2", "class3")
    assert [(e.target, e.row.valence, e.row.arousal) for e in faces.examples] == [
        (0, 0.5, None),
        (3, None, None),
    ]
    assert read_faces(simple, ["a", "b", "c", "d"]).class_names == ("a", "b", "c", "d")
    with pytest.raises(FormatError, match=r"simple.csv, line 3: expression '3' is not one of"):
        read_faces(simple, ["a", "b", "c"])

    affectnet = tmp_path / "affectnet.csv"
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks"
    rows = [f"{i}.jpg,0,0,9,9,,{i},0.1,0.2" for i in (1, 6, 8, 10)]
    affectnet.write_text(f"{header},expression,valence,arousal\n" + "\n".join(rows) + "\n")
    faces = read_faces(affectnet)
    assert faces.class_names[:3] == ("Neutral", "Happy", "Sad") and len(faces.class_names) == 8
    assert [e.target for e in faces.examples] == [1, 6]
    assert faces.skipped == {SKIP_NOT_A_CLASS: 2}  # None and No-Face are not emotions

    fer = fer2013_csv(tmp_path / "fer.csv", train_per_class=1, val=2, test=1)
    faces = read_faces(fer)
    assert faces.class_names == FER2013_CLASSES == ("Angry", "Disgust", "Fear", "Happy", "Sad",
                                                    "Surprise", "Neutral")  # fmt: skip
    assert (faces.rows, faces.skipped) == (10, {SKIP_TEST_SPLIT: 1})
    train, val = split(faces, None, seed=0)
    assert [e.target for e in train] == list(range(7)) and [e.target for e in val] == [0, 1]
    assert train[0].pixels.shape == (48, 48)
    bad = tmp_path / "bad.csv"
    for pixels in ("1 2 3", "1 " * 2303 + "x", "1 " * 2303 + "256"):
        bad.write_text(f"emotion,pixels,Usage\n0,{pixels},Training\n")
        with pytest.raises(FormatError, match=r"bad.csv, line 2: pixels must be 2304 numbers"):
            read_faces(bad)


def test_validation_split_is_stratified_and_follows_the_seed():
    rows = [LabelRow(i + 1, f"{i}.png", i % 3, None, None) for i in range(30)]

    class Faces:  # what split reads of LabelledFaces
        layout, class_names = "simple", ("a", "b", "c")
        examples = [Example(row, row.expression) for row in rows]

    train, val = split(Faces, 0.2, seed=1)
    assert sorted(e.target for e in val) == [0, 0, 1, 1, 2, 2]
    assert len(train) == 24 and not {e.row.line for e in train} & {e.row.line for e in val}
    assert [e.row.line for e in split(Faces, 0.2, seed=1)[1]] == [e.row.line for e in val]
    assert [e.row.line for e in split(Faces, 0.2, seed=2)[1]] != [e.row.line for e in val]
    assert split(Faces, 0.0, seed=1) == (Faces.examples, [])


def test_augmentation_moves_the_box_through_the_aligner_and_follows_its_key(tmp_path):
    image = skimage_data.astronaut()[:300, 100:400]
    box = tuple(FACE_BOX - [100, 0, 100, 0])
    example = Example(LabelRow(1, "x", 0, None, None, box), 0, pixels=image)
    plain = crop_face(image, face_matrix(image, box))
    assert np.array_equal(CropLoader([example], None).crop(0, epoch=3), plain)

    mirror = Augmentation(flip=1.0, rotation=0, scale=0, shift=0, brightness=0, contrast=0)
    flipped = CropLoader([example], None, mirror).crop(0, epoch=0)
    assert np.abs(flipped.astype(int) - plain[:, ::-1]).max() <= 1

    shift = Augmentation(flip=0, rotation=0, scale=0, shift=0.1, brightness=0, contrast=0)
    shifted = CropLoader([example], None, shift).crop(0, epoch=0)
    rng = np.random.default_rng([0, 0, 0, 3])  # the crop's stream: (seed, epoch, position, tag)
    rng.uniform(-0, 0), rng.uniform(-0, 0)  # rotation, scale
    dx, dy = np.rint(rng.uniform(-0.1, 0.1, 2) * 256).astype(int)
    assert max(abs(dx), abs(dy)) >= 3
    moved = np.roll(plain, (dy, dx), axis=(0, 1))
    inner = np.s_[30:-30, 30:-30]

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a[inner].astype(float) - b[inner]).mean())

    assert distance(shifted, moved) < 0.2 * distance(shifted, plain)

    loader = CropLoader([example], None, Augmentation(), seed=5)
    assert np.array_equal(loader.crop(0, 1, 0), loader.crop(0, 1, 0))
    assert not np.array_equal(loader.crop(0, 1, 0), loader.crop(0, 2, 0))
    assert not np.array_equal(loader.crop(0, 1, 0), plain)


def test_a_last_batch_of_one_joins_the_one_before():
    sizes = [len(b) for b in batch_indices(np.arange(9), 4)]
    assert sizes == [4, 5]
    assert [len(b) for b in batch_indices(np.arange(10), 4)] == [4, 4, 2]


# --- training on a generated set ----------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    # Expression labels to train on (the cross-entropy alone learns in a dozen steps),
    # valence and arousal too on the validation faces, to score them.
    train = astronaut_set(root, "train", 4, seed=1, affect=False)
    return root, train, astronaut_set(root, "val", 1, seed=2)


@pytest.fixture(scope="module")
def trained(generated, standin_weights, tmp_path_factory):
    root, train_labels, val_labels = generated
    out = tmp_path_factory.mktemp("run")
    reports = []
    settings = TrainingSettings(
        epochs=4, batch_size=4, lr=3e-3, schedule="constant", augmentation=None
    )
    result = finetune(
        train_labels, out, images=root, init=standin_weights[8], val=val_labels,
        settings=settings, device="cpu", precision="fp32", plot=False, on_epoch=reports.append,
    )  # fmt: skip
    return result, reports


def test_training_accuracy_rises_well_above_chance(trained):
    result, reports = trained
    accuracy = [row["train_acc"] for row in result.history]
    assert accuracy[-1] >= 0.75 > 1 / 3 + 0.4 and accuracy[-1] > accuracy[0]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert [r.epoch for r in reports] == [1, 2, 3, 4]
    assert result.classes.names == ("class0", "class1", "class2")


def test_validation_is_scored_as_emonet_evaluate_scores(trained, generated):
    result, reports = trained
    root, _, val_labels = generated
    loaded = load_model(result.last)
    predictor = Predictor(loaded.model, device="cpu", precision="fp32")
    evaluation = evaluate(read_labels(val_labels, None), root, predictor, batch_size=4)
    scores = evaluation.scores()
    table = format_table(evaluation)
    assert "class0" in table and "class2" in table and "paper" not in table
    report = evaluation_report(evaluation, labels=val_labels, images_root=root)
    assert report["class_names"] == ["class0", "class1", "class2"]
    assert report["published"] is None and report["nclass"] == 3
    row = reports[-1].row
    assert row["val_faces"] == evaluation.used == 3
    assert row["val_acc"] == scores["expression"]["acc"]
    for dimension in ("valence", "arousal"):
        for name, value in scores[dimension].items():
            assert row[f"val_{dimension}_{name}"] == pytest.approx(value, abs=1e-5)
    with open(result.metrics, newline="") as f:
        written = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in written] == [1, 2, 3, 4]
    for column in ("train_loss", "val_acc", "val_valence_ccc", "val_arousal_rmse"):
        assert float(written[-1][column]) == row[column]
    assert written[-1]["val_recall_class1"] == repr(row["val_recall_class1"])
    best = [int(r["epoch"]) for r in written if r["best"] == "1"]
    scores = [float(r["val_score"]) for r in written]
    assert best[0] == 1 and best[-1] == result.best_epoch == 1 + int(np.argmax(scores))


def test_the_fan_is_untouched_and_the_checkpoint_is_the_published_layout(
    trained, standin_weights, tmp_path
):
    result, _ = trained
    initial = load_state_dict(standin_weights[8])
    raw = torch.load(result.best, map_location="cpu", weights_only=True)
    state = {key: value for key, value in raw.items() if key != METADATA_KEY}
    assert set(raw) - set(state) == {METADATA_KEY}
    fan = [key for key in initial if not is_branch(key)]
    assert len(fan) > 500
    assert all(torch.equal(state[key], initial[key]) for key in fan)
    assert any(not torch.equal(state[k], initial[k]) for k in initial if is_branch(k) and
               state[k].shape == initial[k].shape)  # fmt: skip
    assert state["emo_fc_2.3.weight"].shape == (5, 128)  # 3 classes, valence, arousal

    # The published loader: strip 'module.', then load_state_dict(strict=False).
    published = EmoNet(3)
    missing, unexpected = published.load_state_dict(
        {k.replace("module.", ""): v for k, v in raw.items()}, strict=False
    )
    assert (missing, unexpected) == ([], [METADATA_KEY])
    metadata = raw[METADATA_KEY]
    assert metadata["class_names"] == ["class0", "class1", "class2"]
    assert metadata["class_colors"] is None  # none given: the palette's
    assert load_model(result.best).classes.colors == PALETTE[:3]
    assert metadata["nclass"] == 3 and metadata["labels"] == "index"
    assert metadata["init"]["sha256"] == load_model(standin_weights[8]).sha256
    assert metadata["settings"]["lr"] == 3e-3 and metadata["settings"]["augmentation"] is None
    wrong = tmp_path / "wrong.pth"
    torch.save({**raw, METADATA_KEY: {**metadata, "class_names": ["a", "b"]}}, wrong)
    with pytest.raises(WeightsError, match="metadata names 2 classes, but its head has 3"):
        load_model(wrong)
    summary = json.loads(result.summary.read_text())
    assert summary["status"] == "done" and summary["counts"]["train"] == {
        "class0": 4,
        "class1": 4,
        "class2": 4,
    }


def test_train_fan_trains_the_last_hourglass_too(standin_weights):
    model = load_model(standin_weights[8]).model
    before = {key: value.clone() for key, value in model.state_dict().items()}
    trainer = Trainer(
        model, torch.device("cpu"), "fp32", lr=1e-3, weight_decay=0.0, total_steps=1,
        train_fan=True,
    )  # fmt: skip
    crops = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3), dtype=np.uint8)
    trainer.train_mode()
    affect = np.array([0.5, -0.5], dtype=np.float32)
    trainer.step(trainer.features(crops), np.array([0, 1]), affect, affect)
    after = model.state_dict()
    changed = {key for key in before if not torch.equal(before[key], after[key])}
    last_stack = {"m1", "top_m_1", "conv_last1", "bn_end1", "l1"}
    assert {key.split(".")[0] for key in changed} == last_stack | set(EMOTION_BRANCH)
    assert not any("running" in key for key in changed if key.split(".")[0] in last_stack)


# --- FER2013 end to end, through the command line -----------------------------------------------


def test_fer2013_model_runs_through_analyze_with_its_seven_names(
    standin_weights, tmp_path, monkeypatch
):
    labels = fer2013_csv(tmp_path / "fer2013.csv", train_per_class=1, val=2, test=1)
    out = tmp_path / "model"
    colors = ["#102030", "#203040", "#304050", "#405060", "#506070", "#607080", "#7080A0"]
    proc = run_cli(
        "finetune", labels, "-o", out, "--init", standin_weights[8], "--epochs", 1,
        "--batch-size", 7, "--no-augment", "--colors", ",".join(colors), "--device", "cpu",
        "--precision", "fp32",
    )  # fmt: skip
    names = list(FER2013_CLASSES)
    assert proc.stdout.splitlines()[0].startswith("epoch 1/1: loss ")
    assert f"{out / 'best.pth'} (epoch 1 of 1, 7 classes: {', '.join(names)}" in proc.stdout
    summary = json.loads((out / "finetune.json").read_text())
    assert summary["layout"] == "fer2013" and summary["counts"]["skipped"] == {SKIP_TEST_SPLIT: 1}
    assert sum(summary["counts"]["train"].values()) == 7
    assert sum(summary["counts"]["val"].values()) == 2
    assert (out / "metrics.png").stat().st_size > 0

    sample = make_sample(tmp_path / "clip", width=160, height=120, fps=10, seconds=0.4,
                         gap=(0.1, 0.2))  # fmt: skip
    results = tmp_path / "results"
    # In this process: the finetune run above was the subprocess.
    args = ["analyze", sample.video, "--bbox", sample.boxes, "--weights", out / "best.pth"]
    args += ["-o", results, "--device", "cpu", "--precision", "fp32", "--quiet"]
    analyzed = CliRunner().invoke(cli, [str(arg) for arg in args])
    assert analyzed.exit_code == 0, analyzed.output
    stem = sample.video.stem
    with open(results / f"{stem}.csv", newline="") as f:
        table = list(csv.reader(f))
    classes = [f"prob_{name.lower()}" for name in names]
    assert table[0][9 : 9 + len(classes)] == classes  # the quality columns follow
    shown = {row[5] for row in table[1:] if row[2] == "1"}
    assert shown and shown <= set(names) and {row[5] for row in table[1:] if row[2] == "0"} == {""}
    expression = read_annotation(results / f"{stem}.expression.annotation")
    assert expression.scheme.classes == names
    assert expression.scheme.colors == ["#FF" + color[1:] for color in colors]
    report = json.loads((results / f"{stem}.emonet.json").read_text())
    assert report["nclass"] == 7 and report["classes"] == names
    assert list(report["expression_histogram"]) == names
    recording = read_results(results / f"{stem}.csv")  # what emonet plot and render read
    assert recording.class_names == tuple(names)
    assert len(class_colors(recording.class_names)) == 7

    # --nclass is what the weights say; another number is one error line.
    assert load_model(out / "best.pth", nclass=7).classes.names == tuple(names)
    refused = CliRunner().invoke(cli, [
        "analyze", str(sample.video), "--bbox", str(sample.boxes), "--weights",
        str(out / "best.pth"), "--nclass", "8", "-o", str(tmp_path / "refused"), "--quiet",
    ])  # fmt: skip
    assert refused.exit_code == 1
    (line,) = error_lines(refused.output)
    assert "holds the 7-class model" in line
    monkeypatch.delenv("EMONET_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match="published weights have 5 or 8 classes, not 7"):
        load_model(nclass=7, offline=True)


# --- resume -------------------------------------------------------------------------------------


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(
    standin_weights, tmp_path, monkeypatch
):
    root = tmp_path / "set"
    labels = astronaut_set(root, "faces", 2, seed=4, side=48)
    lines = labels.read_text().splitlines()
    labels.write_text("\n".join(lines[:3] + lines[5:]) + "\n")  # classes 0 and 2, 2 faces each
    settings = TrainingSettings(epochs=2, batch_size=2, lr=1e-3)  # with augmentation

    def run(out: Path, **options):
        return finetune(
            labels, out, images=root, class_names=["dark", "unused", "bright"],
            init=standin_weights[8], val_split=0.0, settings=settings, device="cpu",
            precision="fp32", plot=False, **options,
        )  # fmt: skip

    whole = run(tmp_path / "whole")

    batches = []
    features = Trainer.features

    def interrupted(self, crops):
        batches.append(len(crops))
        if len(batches) == 3:  # Ctrl-C in the first batch of the second epoch
            raise KeyboardInterrupt
        return features(self, crops)

    monkeypatch.setattr(Trainer, "features", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    monkeypatch.setattr(Trainer, "features", features)
    left = torch.load(tmp_path / "resumed" / "last.pth", weights_only=True)
    assert left[METADATA_KEY]["epoch"] == 1

    with pytest.raises(EmonetError, match="already holds a training run"):
        run(tmp_path / "resumed")
    other = TrainingSettings(epochs=2, batch_size=2, lr=2e-3)
    with pytest.raises(EmonetError, match=r"other settings \(lr 0.001 then, 0.002 now\)"):
        finetune(
            labels, tmp_path / "resumed", images=root, class_names=["dark", "unused", "bright"],
            init=standin_weights[8], val_split=0.0, settings=other, resume=True,
        )  # fmt: skip

    resumed = run(tmp_path / "resumed", resume=True)
    for name in ("best", "last"):
        a = load_state_dict(getattr(whole, name))
        b = load_state_dict(getattr(resumed, name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    timing = {"images_per_s", "seconds"}
    assert [{k: v for k, v in row.items() if k not in timing} for row in resumed.history] == [
        {k: v for k, v in row.items() if k not in timing} for row in whole.history
    ]
    assert resumed.history[-1]["train_affect_loss"] > 0  # valence and arousal trained too
    assert [row["best"] for row in resumed.history] == [True, True]  # no validation: the last


# --- errors a user can cause: one line, no traceback ---------------------------------------------


def finetune_cli(*args) -> object:
    return CliRunner().invoke(cli, ["finetune", *map(str, args)])


def error_lines(output: str) -> list[str]:
    """The error lines of a command's output, which must hold no traceback (warnings, such
    as a class without faces, may come before)."""
    assert "Traceback" not in output, output
    lines = output.strip().splitlines()
    assert all(line.startswith("emonet: ") for line in lines), output
    return [line for line in lines if line.startswith("emonet: error: ")]


def test_user_errors_end_in_one_line(generated, standin_weights, tmp_path):
    root, train_labels, _ = generated
    init = ["--init", standin_weights[8], "--device", "cpu"]
    missing = tmp_path / "missing.csv"
    missing.write_text("image,expression,valence,arousal\nfaces/train_0_0.png,0,,\nnope.png,1,,\n")
    cases = [
        ([missing, "--images", root, "-o", tmp_path / "a", *init], "missing.csv, line 3: "),
        ([missing, "-o", tmp_path / "a", *init], "give --images"),
        (
            [train_labels, "--images", root, "-o", tmp_path / "a", "--classes", "x,y", *init],
            "line 10: expression '2' is not one of the 2 classes",
        ),
        (
            [train_labels, "--images", root, "-o", tmp_path / "a", "--classes", "x,X,y", *init],
            "--classes: class name 'X' is given twice",
        ),
        (
            [
                train_labels,
                "--images",
                root,
                "-o",
                tmp_path / "a",
                "--colors",
                "red,#0f0,#00f",
                *init,
            ],  # fmt: skip
            "colour 'red' is not of the form",
        ),
        (
            [train_labels, "--images", root, "-o", tmp_path / "a", "--init", tmp_path / "no.pth"],
            "no.pth: no such file",
        ),
        ([train_labels, "--images", root, "-o", tmp_path / "a", "--resume", *init], "nothing to"),
    ]
    for args, message in cases:
        result = finetune_cli(*args)
        assert result.exit_code == 1, result.output
        (line,) = error_lines(result.output)
        assert message in line, line
    both = finetune_cli(
        train_labels, "-o", tmp_path / "a", "--val", train_labels, "--val-split", 0.1
    )
    assert both.exit_code == 2 and "either --val or --val-split" in both.output


def test_a_read_only_output_folder_is_one_line(generated, standin_weights, tmp_path):
    from test_faults import freezable_folder

    root, train_labels, _ = generated
    with freezable_folder(tmp_path / "frozen") as (frozen, freeze):
        freeze()
        result = finetune_cli(
            train_labels, "--images", root, "-o", frozen / "run", "--init", standin_weights[8]
        )
    assert result.exit_code == 1
    (line,) = error_lines(result.output)
    assert line.startswith(f"emonet: error: cannot write into {frozen / 'run'}: ")
    assert "Read-only file system" in line or "Permission denied" in line
