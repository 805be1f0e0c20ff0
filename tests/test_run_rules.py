"""Rules of a run over many inputs: output names never collide silently, --skip-existing only
skips results of the very same file, and an unexpected error in one input stops no other."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from cli_helpers import run_cli
from click.testing import CliRunner

from emonet_cli.cli import cli
from emonet_cli.demo import make_sample
from emonet_cli.run import one_input, runner

MODEL = ("--precision", "fp32", "--device", "cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    return make_sample(folder, width=96, height=72, fps=10.0, seconds=0.6, gap=None)


def test_inputs_that_would_write_the_same_names_are_refused_before_any_work(clip, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(clip.video, videos / "take.mp4")
    shutil.copy(clip.video, videos / "take.avi")
    proc = run_cli("analyze", videos, "--full-frame", "-o", tmp_path / "out", check=False)
    assert proc.returncode == 2
    assert "take.avi" in proc.stderr and "take.mp4" in proc.stderr
    assert "same output files" in proc.stderr
    assert not (tmp_path / "out").exists()
    # In different output folders they do not clash.
    assert runner.output_clashes([(videos / "take.mp4", videos)], None) == []


def test_skip_existing_skips_only_results_of_the_same_file(clip, tmp_path, standin_weights):
    video = tmp_path / "clip.mp4"
    shutil.copy(clip.video, video)
    args = ("analyze", video, "--bbox", clip.boxes, "--weights", standin_weights[8], *MODEL)
    run_cli(*args)
    summary = json.loads((tmp_path / "clip.emonet.json").read_text())
    assert summary["input_file"]["name"] == "clip.mp4"
    assert run_cli(*args, "--skip-existing").stdout.startswith("skipped")
    # Another recording under the same name is not taken for the one analysed.
    with open(video, "ab") as f:
        f.write(b"\0" * 16)
    os.utime(video, ns=(1, 1))
    assert not run_cli(*args, "--skip-existing").stdout.startswith("skipped")


def test_an_unexpected_error_fails_its_input_alone(clip, tmp_path, standin_weights, monkeypatch):
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    shutil.copy(clip.video, first)
    shutil.copy(clip.video, second)
    real = one_input.analyze_file

    def broken_for_a(path, *args, **kwargs):
        if path.name == "a.mp4":
            raise ZeroDivisionError("float division by zero")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(one_input, "analyze_file", broken_for_a)
    args = ["analyze", str(first), str(second), "--full-frame"]
    args += ["--weights", str(standin_weights[8]), *MODEL, "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"emonet: error: {first}: unexpected error: ZeroDivisionError" in result.output
    assert (tmp_path / "out" / "b.emonet.json").is_file()
    assert not (tmp_path / "out" / "a.csv").exists()

    debug = CliRunner().invoke(cli, ["--debug", *args, "--skip-existing"])
    assert "Traceback" in debug.output and "ZeroDivisionError" in debug.output
