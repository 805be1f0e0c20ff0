"""Shared fixtures: the stand-in checkpoints (see standin.py) written once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
