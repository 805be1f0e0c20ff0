"""Shared fixtures: the stand-in checkpoints (see standin.py) written once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest


def _share_the_cores() -> None:
    """Under pytest-xdist (`make test` runs a worker per core), each worker and the CLI runs it
    starts get their share of the cores: torch's and OpenMP's pools sized for the whole machine
    in every worker would fight over the same cores. Set before torch is first imported, and
    inherited by subprocesses, so that in-process and CLI results use the same thread count
    (their last float digits depend on it)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        os.environ["OMP_NUM_THREADS"] = str(max(1, cores // workers))


_share_the_cores()

# The test files that take longest, longest first: `make test` hands them to the workers before
# the rest, so that none of them starts last and leaves the other cores idle at the end. A
# hint only (a file missing here runs in its collection order); `--durations` shows when to
# update it.
SLOWEST_FIRST = (
    "test_discover_server.py",
    "test_bench.py",
    "test_analyze.py",
    "test_finetune.py",
    "test_in_flight.py",
    "test_cluster.py",
    "test_reliability.py",
    "test_identity.py",
    "test_people.py",
    "test_discover_module.py",
    "test_recordings.py",
    "test_faults.py",
    "test_real_recordings.py",
    "test_emotic_train.py",
    "test_evaluate.py",
    "test_detect_cli.py",
    "test_report.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    """Slowest files first (SLOWEST_FIRST); within a file, the order it was written in."""
    rank = {name: k for k, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from standin import STANDIN_MAKERS, save_standin  # noqa: E402


@pytest.fixture(scope="session")
def standin_weights(tmp_path_factory) -> dict[int, Path]:
    """Paths of the stand-in checkpoints for nclass 5 and 8, with the published 'module.' prefix."""
    folder = tmp_path_factory.mktemp("weights")
    return {n: save_standin(folder / f"emonet_{n}.pth", n) for n in (5, 8)}


@pytest.fixture(scope="session")
def family_weights(tmp_path_factory) -> dict[str, Path]:
    """A stand-in weights file of every model family (see standin.STANDIN_MAKERS), by name."""
    folder = tmp_path_factory.mktemp("family-weights")
    return {name: make(folder) for name, make in STANDIN_MAKERS.items()}
