"""Several inputs in flight into one model (`emonet analyze --decoders N`, run_many(decoders=N)):
the same bytes as one at a time, one failing input fails alone, a killed run resumes to the
same files, and the shared model runs calls of one shape that hand each caller its own rows."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from cli_helpers import cli_command, cli_env, run_cli
from test_faults import output_files, part_files, tiny_clip

from emonet_cli.analysis.shared_model import RunStopped, SharedModel
from emonet_cli.demo import make_sample
from emonet_cli.models import registry
from emonet_cli.models.rbdm.preprocess import RBDM_CROP


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Three clips of different sizes and lengths, each with a stretch without a face, their
    box streams beside them."""
    folder = tmp_path_factory.mktemp("in-flight")
    for k, (width, height, seconds) in enumerate(((96, 72, 0.4), (64, 48, 0.32), (80, 60, 0.36))):
        make_sample(folder, f"clip{k}", width, height, 25.0, seconds, gap=(0.12, 0.24))
    return folder


def test_three_decoders_write_the_bytes_of_one(clips, standin_weights, tmp_path):
    # Batches of 5 split across inputs and are padded to whole passes of the model.
    args = ["analyze", clips, "--weights", standin_weights[8], "--batch-size", "5", "-q"]
    args += ["--landmarks", "--embeddings", "--smooth"]
    run_cli(*args, "-o", tmp_path / "one", "--decoders", "1")
    three = run_cli(*args, "-o", tmp_path / "three", "--decoders", "3", "--json")
    assert [json.loads(line)["input"] for line in three.stdout.splitlines()] == [
        str(clips / f"clip{k}.mp4") for k in range(3)
    ]  # in the order of the inputs
    written = output_files(tmp_path / "one")
    assert len(written) == 3 * 12
    for name, data in output_files(tmp_path / "three").items():
        assert data == written.pop(name), name
    assert not written


def test_a_failing_input_fails_alone_among_several_in_flight(clips, standin_weights, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for k in range(3):
        for suffix in (".mp4", ".stream", ".stream~"):
            (inputs / f"clip{k}{suffix}").symlink_to(clips / f"clip{k}{suffix}")
    (inputs / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path / "out"
    proc = run_cli(
        "analyze", inputs, "--weights", standin_weights[8], "-q", "-o", out, "--decoders", "3",
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"emonet: error: {inputs / 'broken.mp4'}: ")
    assert sorted(p.name for p in out.glob("*.emonet.json")) == [
        f"clip{k}.emonet.json" for k in range(3)
    ]
    assert not part_files(out)


def test_a_killed_run_with_decoders_resumes_to_the_same_files(standin_weights, tmp_path):
    """clip1 is long (every frame through the model): killed while it runs, the run leaves no
    partial file of it, and --skip-existing completes it to the files of an uninterrupted run."""
    for k, (frames, faces) in enumerate(((4, 0), (12, 12), (4, 1))):
        tiny_clip(tmp_path, f"clip{k}", frames=frames, face_frames=faces)
    args = ["analyze", tmp_path / "videos", "--bbox-dir", tmp_path / "boxes", "--decoders", "3"]
    args += ["--weights", standin_weights[8], "--device", "cpu", "--precision", "fp32", "-q"]
    run_cli(*args, "-o", tmp_path / "whole")
    out = tmp_path / "killed"
    run = subprocess.Popen(
        cli_command(*args, "-o", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()
    )
    # Killed once clip1's files are being written: which input finishes first depends on how
    # the threads of a loaded machine are scheduled, so the test watches clip1 itself.
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".clip1.") for p in part_files(out)):
        assert run.poll() is None and time.monotonic() < deadline, "clip1 never started"
        time.sleep(0.005)
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode != 0 and b"Traceback" not in stderr
    assert "clip1.emonet.json" not in output_files(out) and not part_files(out)
    proc = run_cli(*args, "-o", out, "--skip-existing", "--json")
    status = {Path(json.loads(line)["input"]).name: json.loads(line)["status"]
              for line in proc.stdout.splitlines()}  # fmt: skip
    assert status["clip1.mp4"] == "ok"
    assert output_files(out) == output_files(tmp_path / "whole")


class Recording:
    """A predictor on `device` (only its type is read), and the number of rows of each call
    it was given."""

    def __init__(self, predictor, device: str):
        self.predictor = predictor
        self.device = SimpleNamespace(type=device)
        self.calls: list[int] = []

    def __call__(self, crops):
        self.calls.append(len(crops))
        return self.predictor(crops)


def shared_calls(shared: SharedModel, crops: np.ndarray, requests: dict) -> dict:
    """What each of three threads, each with its own rows of `crops`, gets back."""
    found: dict[int, np.ndarray] = {}
    start = threading.Barrier(len(requests))

    def analyse(k: int) -> None:
        with shared.serving():
            start.wait()
            found[k] = shared(crops[requests[k]]).heads()

    threads = [threading.Thread(target=analyse, args=(k,)) for k in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


def test_the_shared_model_runs_calls_of_one_shape_and_hands_back_each_callers_rows(
    family_weights,
):
    """Beside an accelerator: full batches from every input, padded to the batch size."""
    rbdm = registry.family("rbdm")
    predictor = rbdm.predictor_for(rbdm.load(family_weights["rbdm"]), "cpu", "fp32")
    rng = np.random.default_rng(7)
    size = RBDM_CROP.size
    crops = rng.integers(0, 256, (12, size, size, 3), dtype=np.uint8)
    # Each face alone in a call of the batch's shape, the padding zeros.
    zeros = np.zeros((4, size, size, 3), dtype=np.uint8)
    expected = np.concatenate(
        [predictor(np.concatenate([crops[i : i + 1], zeros])).heads()[:1] for i in range(12)]
    )
    recording = Recording(predictor, "cuda")
    requests = {0: slice(0, 3), 1: slice(3, 10), 2: slice(10, 12)}
    found = shared_calls(SharedModel(recording, batch_size=5), crops, requests)
    for k, rows in requests.items():
        np.testing.assert_allclose(found[k], expected[rows], atol=1e-6, err_msg=str(k))
    assert recording.calls == [5, 5, 5]  # 12 rows in batches of at most 5, each padded


def test_on_the_cpu_each_callers_batch_runs_as_it_would_alone(family_weights):
    """Beside the CPU: every caller's rows in a call of their own, so every bit is that of a
    run of that input alone."""
    rbdm = registry.family("rbdm")
    predictor = rbdm.predictor_for(rbdm.load(family_weights["rbdm"]), "cpu", "fp32")
    crops = np.random.default_rng(8).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    crops = np.ascontiguousarray(
        np.resize(crops, (12, RBDM_CROP.size, RBDM_CROP.size, 3)), dtype=np.uint8
    )
    recording = Recording(predictor, "cpu")
    requests = {0: slice(0, 3), 1: slice(3, 10), 2: slice(10, 12)}
    found = shared_calls(SharedModel(recording, batch_size=5), crops, requests)
    for k, rows in requests.items():
        assert np.array_equal(found[k], predictor(crops[rows]).heads()), k
    assert sorted(recording.calls) == [2, 3, 7]


def test_a_stopped_shared_model_ends_every_wait(family_weights):
    rbdm = registry.family("rbdm")
    predictor = rbdm.predictor_for(rbdm.load(family_weights["rbdm"]), "cpu", "fp32")
    shared = SharedModel(Recording(predictor, "cuda"), batch_size=8)  # it waits for full batches
    crops = np.zeros((2, RBDM_CROP.size, RBDM_CROP.size, 3), dtype=np.uint8)
    outcome: list[str] = []

    def waiting() -> None:
        try:
            shared(crops)  # 2 of 8 rows, and another input may still bring more: it waits
        except RunStopped:
            outcome.append("stopped")

    with shared.serving(), shared.serving():
        thread = threading.Thread(target=waiting)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive() and not outcome
        shared.stop()
        thread.join(timeout=10)
    assert outcome == ["stopped"]
    beside_the_cpu = SharedModel(predictor, batch_size=8)
    beside_the_cpu.stop()
    with pytest.raises(RunStopped):
        beside_the_cpu(crops)
