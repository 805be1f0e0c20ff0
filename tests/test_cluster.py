"""`emonet analyze` on a Dask cluster (issue 14): one real local cluster of 2 worker processes,
shared by the module, and tiny generated clips. The cluster's files equal a local run's byte
for byte (provenance up to its run time) when the local run uses one thread, as each worker does
(Dask's nanny sets OMP_NUM_THREADS=1; the last float digits depend on torch's thread count)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from cli_helpers import cli_command, cli_env
from click.testing import CliRunner

import emonet_cli
from emonet_cli.analysis.pipeline import AnalysisSettings
from emonet_cli.cli import cli
from emonet_cli.demo import make_sample
from emonet_cli.errors import EmonetError
from emonet_cli.faces import BoxOptions
from emonet_cli.outputs.writers import OutputOptions, is_complete
from emonet_cli.run.cluster import connect
from emonet_cli.run.one_input import ModelOptions
from emonet_cli.run.runner import run_many

MODEL = ModelOptions(device="cpu", precision="fp32")
SETTINGS = AnalysisSettings(batch_size=2)  # several batches: a kill lands mid-file
NAMES = ("a", "b", "c")


@pytest.fixture(scope="module")
def weights_env(standin_weights):
    """The stand-in checkpoint through EMONET_WEIGHTS, for this process and every worker
    process started (or restarted) while the module runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMONET_WEIGHTS", str(standin_weights[8]))
        patch.setenv("EMONET_CACHE", "/nonexistent-cache")
        yield


@pytest.fixture(scope="module")
def client(weights_env):
    pytest.importorskip("distributed")
    import cloudpickle

    # The hooks below run on the workers: sent by value, as this module is not importable there.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # The cluster `emonet analyze --workers 2` starts.
    with connect(workers=2) as client:
        # The workers run this checkout's code (PYTHONPATH is inherited).
        assert set(client.run(package_file).values()) == {emonet_cli.__file__}
        yield client


def package_file() -> str:
    return emonet_cli.__file__


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[tuple[Path, Path]]:
    """Three different 96x72 clips of 4 to 6 frames, each with its box stream beside it."""
    folder = tmp_path_factory.mktemp("clips")
    return [
        (
            make_sample(
                folder, name, width=96, height=72, fps=10.0, seconds=0.4 + 0.1 * i, gap=None
            ).video,
            Path("."),
        )  # fmt: skip
        for i, name in enumerate(NAMES)
    ]


def local_run(media, directory: Path, **kwargs) -> list:
    """A local run with one torch thread, as on a worker."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return list(run_many(media, **run_args(directory), **kwargs))
    finally:
        torch.set_num_threads(threads)


def run_args(directory: Path) -> dict:
    return {
        "boxes": BoxOptions(),
        "model": MODEL,
        "settings": SETTINGS,
        "options": OutputOptions(directory=directory),
    }


@pytest.fixture(scope="module")
def reference(clips, weights_env, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("local") / "out"
    assert [o.status for o in local_run(clips, folder)] == ["ok"] * len(clips)
    return folder


def assert_same_files(local: Path, remote: Path, stems: set[str] | None = None) -> None:
    """Every file (of the inputs `stems`) byte for byte, but the summary JSONs: equal up to
    their run time and the output folder they name."""
    names = sorted(
        p.name for p in local.iterdir() if stems is None or p.name.split(".")[0] in stems
    )
    assert sorted(p.name for p in remote.iterdir()) == names
    for name in names:
        if name.endswith(".emonet.json"):
            mine = json.loads((local / name).read_text())
            theirs = json.loads((remote / name).read_text().replace(str(remote), str(local)))
            assert mine.pop("seconds") >= 0 and theirs.pop("seconds") >= 0
            assert theirs == mine, name
            assert len(mine["weights_sha256"]) == 64
        else:
            assert (remote / name).read_bytes() == (local / name).read_bytes(), name


def statuses(outcomes) -> dict[str, str]:
    return {o.input.name: o.status for o in outcomes}


def test_a_cluster_run_writes_the_files_of_a_local_run(client, clips, reference, tmp_path):
    outcomes = list(run_many(clips, **run_args(tmp_path / "out"), executor=client))
    assert statuses(outcomes) == {f"{n}.mp4": "ok" for n in NAMES}
    assert {o.frames for o in outcomes} == {4, 5, 6}
    assert_same_files(reference, tmp_path / "out")


def test_a_corrupt_input_fails_alone(client, clips, reference, tmp_path):
    corrupt = tmp_path / "x.mp4"
    corrupt.write_text("not a video\n")
    media = [(corrupt, Path(".")), *clips[:2]]
    args = {**run_args(tmp_path / "out"), "boxes": BoxOptions(full_frame=True)}
    outcomes = list(run_many(media, **args, executor=client))
    assert statuses(outcomes) == {"x.mp4": "error", "a.mp4": "ok", "b.mp4": "ok"}
    (failed,) = [o for o in outcomes if o.status == "error"]
    assert str(corrupt) in failed.error and "\n" not in failed.error
    assert not list((tmp_path / "out").glob("x.*"))


def test_a_weights_problem_on_the_workers_ends_the_run_as_locally(client, clips, tmp_path):
    args = {**run_args(tmp_path / "out"), "model": replace(MODEL, weights=tmp_path / "no.pth")}
    with pytest.raises(EmonetError, match="no.pth"):
        list(run_many(clips[:1], **args, executor=client))


def install_killer(marker: str, victim: str) -> None:
    """On a worker: the first time `victim` is analysed (anywhere: `marker` tells), its worker
    process is killed outright after the first batch, while its part files are open."""
    from emonet_cli.run import one_input

    real = one_input.__dict__.setdefault("real_analyze_file", one_input.analyze_file)

    def killing(path, *args, on_batch=None, **kwargs):
        def batch(n):
            if path.name == victim and not os.path.exists(marker):
                Path(marker).write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)

        return real(path, *args, on_batch=batch, **kwargs)

    one_input.analyze_file = killing


def remove_killer() -> None:
    from emonet_cli.run import one_input

    one_input.analyze_file = one_input.__dict__.pop("real_analyze_file", one_input.analyze_file)


def test_a_task_whose_worker_was_killed_completes_elsewhere(client, clips, reference, tmp_path):
    marker = tmp_path / "killed"
    client.run(install_killer, str(marker), "b.mp4")
    try:
        outcomes = list(run_many(clips, **run_args(tmp_path / "out"), executor=client))
    finally:
        client.run(remove_killer)  # (its nanny starts a fresh worker in the killed one's place)
    assert marker.exists()  # the worker was killed
    assert statuses(outcomes) == {f"{n}.mp4": "ok" for n in NAMES}
    assert not [p for p in (tmp_path / "out").iterdir() if ".part" in p.name]
    assert_same_files(reference, tmp_path / "out")


def wait_until_idle(client, timeout: float = 60) -> None:
    """Until no worker runs a task: cancelled tasks that had started run to their end."""

    def busy(dask_worker) -> int:
        return len(dask_worker.state.executing) + len(dask_worker.state.long_running)

    deadline = time.monotonic() + timeout
    while any(client.run(busy).values()):
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_skip_existing_after_an_interrupted_run_completes_the_rest(
    client, clips, reference, tmp_path
):
    args = run_args(tmp_path / "out")
    outcomes = run_many(clips, **args, executor=client)
    first = next(outcomes)
    outcomes.close()  # as Ctrl-C does: the pending tasks are cancelled
    wait_until_idle(client)
    options = args["options"]
    done = {p.name for p, _ in clips if is_complete(p, options)}
    assert first.input.name in done
    rest = list(run_many(clips, **args, executor=client, skip_existing=True))
    assert statuses(rest) == {p.name: "skipped" if p.name in done else "ok" for p, _ in clips}
    assert_same_files(reference, tmp_path / "out")


def test_the_cli_starts_and_stops_its_own_local_cluster(client, clips, reference, tmp_path):
    env = {**cli_env(), "EMONET_WEIGHTS": os.environ["EMONET_WEIGHTS"]}
    media = clips[:2]
    args = ["analyze", *(str(p) for p, _ in media), "--workers", "2", "--batch-size", "2"]
    args += ["--precision", "fp32", "--device", "cpu", "-o", str(tmp_path / "out"), "--json"]
    proc = subprocess.run(cli_command(*args), capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(line["input"] for line in lines) == sorted(str(p) for p, _ in media)
    assert_same_files(reference, tmp_path / "out", {p.stem for p, _ in media})


def test_without_dask_the_cluster_options_say_how_to_install_it(clips, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    args = ["analyze", str(clips[0][0]), "--workers", "2", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        "emonet: error: --scheduler and --workers need Dask, which is not installed: "
        "pip install 'emonet-cli[cluster]'"
    ]


def test_scheduler_and_workers_exclude_each_other(clips):
    args = ["analyze", str(clips[0][0]), "--workers", "2", "--scheduler", "tcp://head:8786"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "either --scheduler or --workers" in result.output
