"""Every entry of the model-family registry, through every seam that consults it: the
command line's --model, its crop, its loader and predictor, and a whole `emonet analyze`."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import skimage.data
from cli_helpers import run_cli
from click.testing import CliRunner
from standin import STANDIN_MAKERS

from emonet_cli.cli import cli
from emonet_cli.demo import make_sample
from emonet_cli.errors import EmonetError
from emonet_cli.faces.align import BOX_KINDS, FaceCrop
from emonet_cli.faces.face import FrameFace
from emonet_cli.media.frames import Frame
from emonet_cli.models.registry import (
    FAMILIES,
    RESULT_KINDS,
    families_giving,
    family,
    trainable_families,
)
from emonet_cli.outputs.results import csv_columns
from emonet_cli.run.one_input import ModelOptions

NAMES = sorted(FAMILIES)
ASTRONAUT_FACE = (180.0, 40.0, 290.0, 170.0)  # x1, y1, x2, y2 in skimage's astronaut


def model_choices(command: str) -> list[str]:
    command = cli.get_command(None, command)
    option = next(p for p in command.params if "--model" in p.opts)
    return list(option.type.choices)


def test_every_family_has_stand_in_weights_for_the_tests():
    assert sorted(STANDIN_MAKERS) == NAMES


@pytest.mark.parametrize("command", ["analyze", "evaluate"])
def test_the_commands_offer_every_family(command):
    assert model_choices(command) == list(FAMILIES)


def test_render_offers_the_families_whose_expressions_it_draws():
    assert model_choices("render") == list(families_giving("expression", "valence", "arousal"))
    assert "emotic" not in model_choices("render") and "rbdm" in model_choices("render")


def test_finetune_offers_the_families_that_can_be_trained():
    assert model_choices("finetune") == list(trainable_families())
    assert "emonet" in trainable_families()


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_complete(name):
    entry = family(name)
    assert entry.name == name and entry.title and entry.reference
    assert entry.outputs and set(entry.outputs) <= set(RESULT_KINDS)
    assert {"valence", "arousal"} <= set(entry.outputs)
    assert bool(entry.categories) == entry.gives("categories")
    assert entry.file_boxes in BOX_KINDS
    for nclass, published in entry.weights.items():
        assert published.nclass == nclass
        assert len(published.sha256) == 64 and published.url.startswith("https://")


FACE_FAMILIES = [name for name in NAMES if isinstance(family(name).crop, FaceCrop)]


def test_every_family_cuts_faces_or_people():
    assert set(FACE_FAMILIES) | {n for n in NAMES if family(n).file_boxes == "person"} == set(NAMES)


@pytest.mark.parametrize("name", FACE_FAMILIES)
def test_crop_puts_the_face_box_centre_at_the_crop_centre(name):
    crop = family(name).crop
    matrix = crop.matrix(np.array(ASTRONAUT_FACE))
    centre = np.array([(ASTRONAUT_FACE[0] + ASTRONAUT_FACE[2]) / 2, 105.0, 1.0])
    np.testing.assert_allclose(matrix @ centre, [crop.size / 2, crop.size / 2], atol=1e-9)
    whole = crop.whole_frame(64, 48)
    np.testing.assert_allclose(whole @ [64.0, 48.0, 1.0], [crop.size, crop.size])


@pytest.mark.parametrize("name", NAMES)
def test_loader_and_predictor_run_the_stand_in(name, family_weights):
    entry = family(name)
    loaded = entry.load(weights=family_weights[name], offline=True, progress=False)
    assert loaded.path == family_weights[name] and len(loaded.sha256) == 64
    predictor = entry.predictor_for(loaded, "cpu", "fp32")
    assert predictor.family == name  # what the pipeline reads the crop from
    frame = Frame(0, 0.0, skimage.data.astronaut())
    crop = entry.crop.for_boxes("face")
    cuts = [
        crop.cut(frame, FrameFace(np.array(box), 1.0))[0]
        for box in (ASTRONAUT_FACE, (150.0, 20.0, 320.0, 200.0))
    ]
    out = predictor(crop.stack(cuts))
    assert len(out) == 2
    assert out.expression.shape == (2, predictor.nclass)
    if entry.gives("expression"):
        np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, rtol=1e-6)
    for kind in ("valence", "arousal", "dominance"):
        values = getattr(out, kind)
        if entry.gives(kind):
            assert values.shape == (2,) and np.isfinite(values).all()
    if entry.gives("landmarks"):
        assert out.landmarks.shape == (2, 68, 2)
    if entry.categories:
        assert out.categories.shape == (2, len(entry.categories))
        assert predictor.thresholds.shape == (len(entry.categories),)
    heads = out.heads()
    assert np.isfinite(heads).all()
    assert not np.allclose(heads[0], heads[1])  # the crops differ


@pytest.mark.parametrize("name", NAMES)
def test_analyze_with_each_family_writes_its_results(name, family_weights, tmp_path):
    sample = make_sample(tmp_path, width=96, height=72, fps=10.0, seconds=0.5, gap=None)
    run_cli(
        "analyze", sample.video, "--bbox", sample.boxes, "--model", name, "--weights",
        family_weights[name], "--precision", "fp32", "--device", "cpu", "--offline",
        "-o", tmp_path / "out", "--quiet",
    )  # fmt: skip
    stem = sample.video.stem
    with open(tmp_path / "out" / f"{stem}.csv") as f:
        rows = list(csv.DictReader(f))
    summary = json.loads((tmp_path / "out" / f"{stem}.emonet.json").read_text())
    assert len(rows) == summary["frames"] == 5
    assert summary["frames_with_face"] == 5 and summary["model"] == name
    assert list(rows[0]) == csv_columns(summary["classes"], family(name))
    for kind in ("valence", "arousal", "dominance"):
        if family(name).gives(kind):
            assert all(np.isfinite(float(row[kind])) for row in rows)


def test_an_unknown_family_is_one_line(tmp_path):
    with pytest.raises(EmonetError, match=r"^unknown model 'nope': use one of emonet"):
        ModelOptions(family="nope").load()
    result = CliRunner().invoke(cli, ["analyze", str(tmp_path), "--model", "nope"])
    assert result.exit_code == 2 and "Invalid value for '--model'" in result.output
