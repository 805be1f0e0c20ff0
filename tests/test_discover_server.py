"""The module under the real DISCOVER server (hcai-discover), as a NOVA user runs it: `emonet
discover-module install` into the server's modules folder, the server started on a loopback
port with a `.env` naming its folders, requests sent to `POST /process` and followed with
`POST /job_status` until they end.

DISCOVER builds the module's own virtual environment from its requirements.txt on the first
request (emonet-cli from a wheel of this checkout, with the rbdm extra, and torch), as it does
for a user; PIP_CONSTRAINT=constraints.txt makes pip pick the pinned CPU torch. One server and
one environment serve the whole module: one sequence of jobs, the bad requests between the two
good ones, so the second good one shows that the server still works after them.

Outputs are compared with `emonet analyze`'s (annotations at DISCOVER's 2 decimals, streams to
the bit; see test_discover_module.py, whose clip and helpers these are).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from discover_utils.data.handler.file_handler import FileHandler
from test_discover_module import (  # noqa: F401 (clip: the fixture, shared)
    NOT_ANALYSED,
    clip,
    discover_ascii,
    discover_ascii_ms,
    needs_ffprobe,
    request,
)

from emonet_cli import __version__
from emonet_cli.analysis.analyze import analyze_file
from emonet_cli.analysis.pipeline import AnalysisSettings
from emonet_cli.discover import MODULE_FOLDER, install_module
from emonet_cli.discover.spec import EMONET_MODULE, RBDM_MODULE
from emonet_cli.faces import BoxSource
from emonet_cli.formats.annotations import read_annotation
from emonet_cli.formats.streams import read_stream
from emonet_cli.models import registry
from emonet_cli.models.rbdm.inference import WEIGHTS_ENV as RBDM_WEIGHTS_ENV
from emonet_cli.outputs.writers import OutputOptions

REPO = Path(__file__).resolve().parents[1]
FINISHED, ERROR = 2, 3  # discover.utils.job_utils.JobStatus
# s: the first job builds the environment (torch included): ~2 min on an idle 2-core machine,
# 19 on one loaded with a dozen other test runs.
BUILD_AND_RUN_LIMIT = 2400.0
RUN_LIMIT = 300.0
pytestmark = [
    needs_ffprobe,
    pytest.mark.skipif(
        importlib.util.find_spec("discover") is None
        or importlib.util.find_spec("discover.app") is None,
        reason="needs the DISCOVER server: pip install hcai-discover (the test extra has it)",
    ),
]
ANNOTATIONS = ("expression", "valence", "arousal")


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DiscoverServer:
    """The DISCOVER server in a process of its own, its folders under `root`."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root = root
        self.port = free_loopback_port()
        self.folders = {name: root / name for name in ("modules", "data", "cache", "tmp", "logs")}
        for folder in self.folders.values():
            folder.mkdir()
        # The .env a user writes: the server's address and folders.
        self.env_file = root / ".env"
        self.env_file.write_text(
            f"DISCOVER_HOST=127.0.0.1\nDISCOVER_PORT={self.port}\n"
            f"DISCOVER_CML_DIR={self.folders['modules']}\n"
            f"DISCOVER_DATA_DIR={self.folders['data']}\n"
            f"DISCOVER_CACHE_DIR={self.folders['cache']}\n"
            f"DISCOVER_TMP_DIR={self.folders['tmp']}\n"
            f"DISCOVER_LOG_DIR={self.folders['logs']}\n"
            "DISCOVER_BACKEND=venv\n"
        )
        self.output = open(root / "server.log", "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "discover.app", "--env", str(self.env_file)],
            cwd=root,
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.timings: dict[str, float] = {}

    def post(self, route: str, form: dict[str, str]) -> dict:
        body = urllib.parse.urlencode(form).encode()
        with urllib.request.urlopen(f"{self.url}{route}", body, timeout=30) as response:
            return json.loads(response.read())

    def wait_ready(self, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"DISCOVER exited: {(self.root / 'server.log').read_text()}")
            try:
                self.post("/job_status", {"jobID": "not-a-job"})
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("DISCOVER did not answer within a minute")

    def run(self, job: str, trainer: str, data: list[dict], options: dict, limit: float):
        """Send a job and wait for its end: its status and its log's messages."""
        started = time.monotonic()
        form = {
            "jobID": job,
            "trainerFilePath": f"{MODULE_FOLDER}\\{trainer}",
            "data": json.dumps(data),
            "options": json.dumps(options),
        }
        assert self.post("/process", form) == {"success": "True"}
        while time.monotonic() - started < limit:
            status = self.post("/job_status", {"jobID": job})["status"]
            if status in (FINISHED, ERROR):
                self.timings[job] = time.monotonic() - started
                log = (self.folders["logs"] / f"{job}.log").read_text()
                # Lines are "date time LEVEL message".
                return status, [line.split(" ", 3)[-1] for line in log.splitlines()]
            time.sleep(0.5)
        raise AssertionError(f"job {job} did not end within {limit:.0f} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, standin_weights, family_weights):
    """One server for the module, its modules folder holding our module for a wheel of this
    checkout, the stand-in weights given by the environment DISCOVER passes on to the jobs."""
    root = tmp_path_factory.mktemp("discover-server")
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(wheels), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("emonet_cli-*.whl")
    env = {
        **os.environ,
        "PIP_CONSTRAINT": str(REPO / "constraints.txt"),
        # DISCOVER's pip calls skip byte-compiling the 9,000 files they install (half the
        # build's time); the jobs cache the bytecode of what they import, on first import.
        "PIP_COMPILE": "0",
        "PYTHONDONTWRITEBYTECODE": "",
        "EMONET_WEIGHTS": str(standin_weights[8]),
        RBDM_WEIGHTS_ENV: str(family_weights["rbdm"]),
        "EMONET_CACHE": "/nonexistent-cache",
    }
    running = DiscoverServer(root, env)
    try:
        install_module(running.folders["modules"], str(wheel))
        running.wait_ready()
        yield running
    finally:
        running.stop()


def good_request(inputs, folder: Path, video_id: str, streams: bool) -> list[dict]:
    video, boxes = inputs
    folder.mkdir()
    return request(video_id, video, "file:stream:ssistream", boxes, folder, streams)


CPU_FP32 = {"precision": "fp32", "device": "cpu"}


@pytest.fixture(scope="module")
def jobs(server, clip):  # noqa: F811 (the imported fixture)
    """The sequence of jobs, {job: (status, log lines, output folder)}: EmoNet (builds the
    environment), three bad requests, then RBDM."""
    video, boxes = clip
    out = server.root / "out"
    out.mkdir()
    results = {}

    def run(job, trainer, data, options, folder=None, limit=RUN_LIMIT):
        status, log = server.run(job, trainer, data, options, limit)
        results[job] = (status, log, folder)

    emonet = good_request(clip, out / "emonet", "video", streams=True)
    options = {"batch_size": 2, **CPU_FP32}
    run("emonet", EMONET_MODULE.trainer_name, emonet, options, out / "emonet", BUILD_AND_RUN_LIMIT)

    unknown = good_request(clip, out / "unknown", "video", streams=False)
    unknown[1]["id"] = "face_box"  # misspelt
    run("unknown-input", EMONET_MODULE.trainer_name, unknown, CPU_FP32)

    missing = good_request(clip, out / "missing", "video", streams=False)
    missing[0]["uri"] = str(video.with_name("no-such-video.mp4"))
    run("missing-video", EMONET_MODULE.trainer_name, missing, CPU_FP32)

    unwritable = request("input_data", video, "file:stream", boxes, out / "absent", False)
    run("unwritable-output", RBDM_MODULE.trainer_name, unwritable, CPU_FP32)

    rbdm = good_request(clip, out / "rbdm", "input_data", streams=False)
    run("rbdm", RBDM_MODULE.trainer_name, rbdm, {"batch_size": 3, **CPU_FP32}, out / "rbdm")
    print(f"DISCOVER server jobs (s): {server.timings}")  # seen with -s: the build's cost
    return results


@pytest.fixture(scope="module")
def analyzed(clip, standin_weights, family_weights, tmp_path_factory):  # noqa: F811
    """`emonet analyze`'s outputs for each trainer's model and crop: {family: folder}."""
    video, boxes = clip
    folders = {}
    for spec, weights in (
        (EMONET_MODULE, standin_weights[8]),
        (RBDM_MODULE, family_weights["rbdm"]),
    ):
        models = registry.family(spec.family)
        predictor = models.predictor_for(models.load(weights=weights), "cpu", "fp32")
        folders[spec.family] = tmp_path_factory.mktemp(f"analyze-{spec.family}")
        analyze_file(
            video,
            predictor,
            BoxSource(path=boxes),
            AnalysisSettings(crop=spec.crop),
            OutputOptions(directory=folders[spec.family], landmarks=True, embeddings=True),
        )
    return folders


def finished(jobs, job: str) -> Path:
    status, log, folder = jobs[job]
    assert status == FINISHED, "\n".join(log[-40:])
    assert not any("Traceback" in line or "exited with error" in line for line in log)
    return folder


@pytest.mark.parametrize("job, family", [("emonet", "emonet"), ("rbdm", "rbdm")])
def test_both_trainers_write_what_analyze_writes(jobs, analyzed, job, family):
    folder = finished(jobs, job)
    for name in ANNOTATIONS:
        ours = read_annotation(analyzed[family] / f"astronaut.{name}.annotation")
        loaded = FileHandler().load(folder / f"{name}.annotation")
        if name == "expression":
            np.testing.assert_array_equal(loaded.data["id"], ours.data["id"])
            np.testing.assert_array_equal(loaded.data["from"], discover_ascii_ms(ours.data["from"]))
            np.testing.assert_array_equal(loaded.data["to"], discover_ascii_ms(ours.data["to"]))
            assert np.flatnonzero(loaded.data["id"] == -1).tolist() == NOT_ANALYSED
        else:
            np.testing.assert_array_equal(loaded.data["score"], discover_ascii(ours.data["score"]))
        np.testing.assert_array_equal(loaded.data["conf"], discover_ascii(ours.data["conf"]))
    if family == "emonet":
        for name in ("landmarks", "embedding"):
            ours = read_stream(analyzed[family] / f"astronaut.{name}.stream")
            np.testing.assert_array_equal(
                FileHandler().load(folder / f"{name}.stream").data, ours.data
            )


def test_the_environment_is_built_from_the_requirements_once(server, jobs):
    """DISCOVER named the environment after version.py and installed the rbdm extra there."""
    (venv,) = (server.folders["cache"] / "venvs").iterdir()
    assert venv.name == f"{MODULE_FOLDER}@{__version__}"
    python = venv / "bin" / "python"
    probe = "import h5py, torch, emonet_cli; print(torch.__version__, emonet_cli.__file__)"
    # -I: not the checkout in the working folder, what the environment holds.
    shown = subprocess.run(
        [str(python), "-I", "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert shown.returncode == 0, shown.stderr
    torch_version, package = shown.stdout.split()
    assert torch_version == "2.13.0+cpu"  # PIP_CONSTRAINT's torch
    assert Path(package).resolve().is_relative_to(venv.resolve())
    # The first job built it; the others found it.
    assert sum("Venv" in line and "initialized" in line for line in jobs["rbdm"][1]) == 1
    assert not any("Successfully installed" in line for line in jobs["rbdm"][1])


@pytest.mark.parametrize(
    "job, message",
    [
        ("unknown-input", r"RequestError: unknown input id face_box: the emonet module's inputs"),
        ("missing-video", r"FileNotFoundError: .*no-such-video\.mp4"),
        ("unwritable-output", r"RequestError: output 'expression': cannot write .*absent/"),
    ],
)
def test_a_bad_request_ends_as_an_error_job_with_one_clear_line(jobs, job, message):
    status, log, _ = jobs[job]
    assert status == ERROR
    # Not the request DISCOVER logs first, nor du-process's summary that repeats the message.
    said = [line for line in log[1:] if re.search(message, line)]
    errors = [line for line in said if "exited with error" not in line]
    assert len(errors) == 1, "\n".join(log[-30:])
    # Our refusals carry no traceback of emonet-cli's code: one frame, where process_data
    # raises (DISCOVER prints the traceback).
    assert sum(bool(re.search(r'File ".*/emonet_cli/', line)) for line in log) <= 1
