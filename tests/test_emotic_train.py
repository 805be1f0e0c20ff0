"""EMOTIC from its dataset: Annotations.mat read in the dataset's layout, a short training run
with stand-in backbones (`emonet finetune --model emotic`), thresholds chosen on the val split
as the reference chooses them, then `evaluate` and `analyze` with the trained file; the
backbone files downloaded and checked against a local HTTP server; damaged inputs refused in
one line."""

from __future__ import annotations

import csv
import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from emotic_dataset import write_dataset
from local_server import serving
from scipy.io import loadmat, savemat
from standin import write_backbone_standins

from emonet_cli.errors import WeightsError
from emonet_cli.evaluate.emotic_mat import read_annotations
from emonet_cli.finetune.emotic_losses import category_loss, vad_loss
from emonet_cli.models.emotic.backbones import load_backbone
from emonet_cli.models.emotic.metrics import CATEGORIES, equal_precision_recall_threshold
from emonet_cli.outputs.results import category_slug

SLUGS = [category_slug(name) for name in CATEGORIES]
FAST = ("--device", "cpu", "--precision", "fp32")


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def brute_force_threshold(labels, scores) -> float:
    """The reference's rule from its definition, in exact fractions: of every score t, the
    lowest at which precision(score >= t) equals recall(score >= t); 0 without one."""
    positives = sum(labels)
    if not positives:
        return 0.0
    for t in sorted(set(scores)):
        chosen = [y for y, s in zip(labels, scores) if s >= t]
        true_pos = sum(chosen)
        if Fraction(true_pos, len(chosen)) == Fraction(true_pos, positives):
            return t
    return 0.0


def scores_of(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([[int(row[f"label_{s}"]) for s in SLUGS] for row in rows])
    scores = np.array([[float(row[f"score_{s}"]) for s in SLUGS] for row in rows])
    return labels, scores


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("emotic-dataset")
    mat = write_dataset(root, counts=(2, 2, 2))
    body, context = write_backbone_standins(root / "init")
    return root, mat, body, context


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    root, mat, body, context = dataset
    run = tmp_path_factory.mktemp("emotic-run") / "run"
    # A gentle rate: at the reference's 0.01 (or 0.005) a few steps on so few images move the
    # weights far ahead of the batch-norm running statistics, and evaluation's scores come
    # out in the thousands; at 0.001 they stay near those of the stand-in backbones.
    proc = run_cli(
        "finetune", "--model", "emotic", mat, "--images", root / "emotic", "-o", run,
        "--body-init", body, "--context-init", context, "--epochs", "3", "--batch-size", "5",
        "--lr", "0.001", "--no-augment", "--workers", "2", *FAST,
    )  # fmt: skip
    return run, proc


def test_annotations_in_the_dataset_layout(dataset):
    root, mat, _, _ = dataset
    # The generated file has the layout the reference's mat2py.py indexes by position.
    person = loadmat(mat)["val"][0][0][4][0][0]
    assert [str(c[0]) for c in person[2][0]] == ["Affection", "Happiness"]
    train, val = read_annotations(mat, "train"), read_annotations(mat, "val")
    assert (train.images, len(train.people)) == (2, 5)
    assert (val.images, len(val.people)) == (2, 5)
    assert val.left_out == {"valence, arousal or dominance missing": 1, "no category annotator": 1}
    first = val.people[0]
    assert first.image == "mscoco/images/val_000.jpg" and first.box == (4.0, 10.0, 34.0, 90.0)
    # The combined labels, not one annotator's (each gave only one of the two).
    held = [CATEGORIES[k] for k, h in enumerate(first.categories) if h]
    assert held == ["Affection", "Happiness"] and first.vad == (8.0, 6.0, 7.0)
    assert all((root / "emotic" / p.image).is_file() for p in train.people + val.people)


def test_damaged_or_foreign_mat_is_one_line(dataset, family_weights, tmp_path):
    root, _, _, _ = dataset
    damaged = tmp_path / "Annotations.mat"
    damaged.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(range(256)) * 4)
    foreign = tmp_path / "foreign.mat"
    savemat(foreign, {"scores": np.ones((2, 3))})
    for path, expected in ((damaged, "not a readable MATLAB file"), (foreign, "no 'test' split")):
        proc = run_cli(
            "evaluate", "--model", "emotic", path, "--images", root, "--weights",
            family_weights["emotic"], *FAST, check=False,
        )  # fmt: skip
        assert proc.returncode == 1
        assert proc.stderr.strip().count("\n") == 0 and expected in proc.stderr
        assert str(path) in proc.stderr
    proc = run_cli("finetune", "--model", "emotic", foreign, "--images", root, "-o",
                   tmp_path / "run", check=False)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0
    assert "no 'train' split" in proc.stderr and not (tmp_path / "run").exists()


def test_threshold_rule_matches_its_definition():
    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(1, 25))
        labels = rng.integers(0, 2, n)
        scores = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # ties too
        expected = brute_force_threshold(labels.tolist(), scores.tolist())
        assert equal_precision_recall_threshold(labels, scores) == expected


def test_training_writes_a_model_whose_loss_falls(trained):
    run, proc = trained
    rows = read_rows(run / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    losses = [float(r["train_loss"]) for r in rows]
    assert losses[2] < losses[0], losses
    assert all(r["val_map"] and r["val_vad_mae"] for r in rows)
    assert "*best*" in proc.stdout and "best.pth" in proc.stdout
    state = torch.load(run / "best.pth", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert state["thresholds"].shape == (26,) and state["thresholds"].abs().sum() > 0
    summary = json.loads((run / "finetune.json").read_text())
    assert summary["status"] == "done" and summary["people"] == {"train": 5, "val": 5}
    assert summary["settings"]["discrete_weights"] == "dynamic"


def test_thresholds_are_the_rule_on_evaluates_val_scores(trained, dataset, tmp_path):
    run, _ = trained
    root, mat, _, _ = dataset
    scores_csv = tmp_path / "val.csv"
    run_cli("evaluate", "--model", "emotic", mat, "--images", root / "emotic", "--split", "val",
            "--weights", run / "best.pth", "--scores", scores_csv, *FAST)  # fmt: skip
    labels, scores = scores_of(read_rows(scores_csv))
    assert labels.shape == (5, 26)
    _, kept = scores_of(read_rows(run / "val_scores.csv"))
    np.testing.assert_array_equal(kept, scores)
    expected = [brute_force_threshold(labels[:, k].tolist(), scores[:, k].tolist())
                for k in range(26)]  # fmt: skip
    thresholds = torch.load(run / "best.pth", weights_only=True)["thresholds"].numpy()
    np.testing.assert_array_equal(thresholds, np.array(expected, dtype=np.float32))


def test_evaluate_and_analyze_with_the_trained_file(trained, dataset, tmp_path):
    run, _ = trained
    root, mat, _, _ = dataset
    report_path, scores_csv = tmp_path / "report.json", tmp_path / "test.csv"
    run_cli("evaluate", "--model", "emotic", mat, "--images", root / "emotic", "--weights",
            run / "best.pth", "-o", report_path, "--scores", scores_csv, *FAST)  # fmt: skip
    report = json.loads(report_path.read_text())
    rows = read_rows(scores_csv)
    labels, scores = scores_of(rows)
    assert report["people"] == len(rows) == 5
    assert np.abs(scores).max() < 10, "scores out of a trained model's range"
    for k, name in enumerate(CATEGORIES):
        ranked = np.argsort(-scores[:, k], kind="stable")
        hits = np.cumsum(labels[ranked, k])
        precisions = [hits[i] / (i + 1) for i in range(len(ranked)) if labels[ranked[i], k]]
        expected = float(np.mean(precisions)) if precisions else 0.0
        assert report["average_precision"][name] == pytest.approx(expected, abs=1e-9)
    truth = np.array([p.vad for p in read_annotations(mat, "test").people])
    predicted = np.array([[float(r[d]) for d in ("valence", "arousal", "dominance")] for r in rows])
    mae = report["vad_mean_absolute_error"]
    assert mae["mean"] == pytest.approx(np.abs(predicted - truth).mean(), abs=1e-6)

    # analyze the first test image's people with the same file: the same scores, and the
    # categories reported where a score is above best.pth's threshold.
    image = root / "emotic" / rows[0]["image"]
    people = [r for r in rows if r["image"] == rows[0]["image"]]
    listing = tmp_path / "people.txt"
    listing.write_text("".join(
        f"{image.name} {' '.join(r[c] for c in ('x1', 'y1', 'x2', 'y2'))}\n" for r in people
    ))  # fmt: skip
    out = tmp_path / "analysed"
    run_cli("analyze", image, "--bbox", listing, "--model", "emotic", "--weights",
            run / "best.pth", "-o", out, "--quiet", *FAST)  # fmt: skip
    thresholds = torch.load(run / "best.pth", weights_only=True)["thresholds"].numpy()
    for number, person in enumerate(people, start=1):
        (analysed,) = read_rows(out / f"{image.stem}.face{number}.csv")
        got = np.array([float(analysed[f"score_{s}"]) for s in SLUGS])
        want = np.array([float(person[f"score_{s}"]) for s in SLUGS])
        # evaluate and analyze run the people in batches of another make-up, whose float
        # sums differ in the last bits (more on some CPUs): relative to the scores' scale.
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * scale)
        held = {CATEGORIES[k] for k in np.flatnonzero(got > thresholds)}
        assert set(filter(None, analysed["categories"].split(";"))) == held


def test_resume_needs_the_same_settings(trained, dataset):
    run, _ = trained
    root, mat, body, context = dataset
    args = ("finetune", "--model", "emotic", mat, "--images", root / "emotic", "-o", run,
            "--body-init", body, "--context-init", context, "--batch-size", "5",
            "--no-augment", "--workers", "2", *FAST)  # fmt: skip
    refused = run_cli(*args, "--epochs", "3", "--lr", "0.01", "--resume", check=False)
    assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0
    assert "lr 0.001 then, 0.01 now" in refused.stderr
    again = run_cli(*args, check=False)
    assert again.returncode == 1 and "--resume continues it" in again.stderr


def test_backbones_fetched_and_checked(dataset, tmp_path, monkeypatch):
    _, _, body, _ = dataset
    payload = body.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    monkeypatch.setenv("EMONET_CACHE", str(tmp_path / "cache"))
    with serving() as server:
        server.routes["/body.pth"] = payload
        server.routes["/other.pth"] = b"not the file"
        monkeypatch.setenv("EMONET_EMOTIC_BODY_INIT_URL", server.url("/other.pth"))
        monkeypatch.setenv("EMONET_EMOTIC_BODY_INIT_SHA256", digest)
        with pytest.raises(WeightsError, match="not the expected"):
            load_backbone("body")
        assert not (tmp_path / "cache" / "resnet18-f37072fd.pth").exists()
        with pytest.raises(WeightsError, match="--offline"):
            load_backbone("body", offline=True)
        monkeypatch.setenv("EMONET_EMOTIC_BODY_INIT_URL", server.url("/body.pth"))
        loaded = load_backbone("body")
        assert loaded.sha256 == digest and loaded.path.parent == tmp_path / "cache"
        again = load_backbone("body", offline=True)  # verified in the cache: not asked again
        assert server.requests == ["/other.pth", "/body.pth"]
    assert "fc.weight" not in loaded.state and set(again.state) == set(loaded.state)


def test_losses_give_the_references_own_check_values():
    # The values the reference's loss.py prints for its own example.
    target = torch.zeros(2, 26)
    target[0, :13], target[1, 13:], target[:, 13] = 1, 2, 0
    assert category_loss(torch.ones(2, 26), target).item() == pytest.approx(37.1217, abs=1e-4)
    truth = torch.tensor([[0.9] * 3, [0.2] * 3]) * 10
    predicted = torch.tensor([[0.7] * 3, [0.25] * 3]) * 10
    assert vad_loss(predicted, truth, "smooth-l1").item() == pytest.approx(4.875, abs=1e-5)
    assert vad_loss(predicted, truth, "l2").item() == pytest.approx(12.0, abs=1e-5)
