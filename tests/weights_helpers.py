"""What the `emonet weights` tests share: a clean environment (no family's variable, an empty
cache, no checkout folder), real `python -m emonet_cli` runs in it, and their one error line."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emonet_cli.models import weights
from emonet_cli.models.emotic.lookup import PUBLISHED_FILES

REPO = Path(__file__).resolve().parent.parent
ENV_NAMES = (
    "EMONET_WEIGHTS",
    "EMONET_WEIGHTS_URL",
    "EMONET_WEIGHTS_SHA256_5",
    "EMONET_WEIGHTS_SHA256_8",
    "EMONET_RBDM_WEIGHTS",
    "EMONET_RBDM_WEIGHTS_URL",
    "EMONET_RBDM_WEIGHTS_SHA256_8",
    "EMONET_EMOTIC_WEIGHTS",
    "EMONET_CACHE",
    "XDG_CACHE_HOME",
)


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No weights anywhere for code run in-process: an empty cache under `tmp_path`, no
    checkout folder, no variables."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EMONET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "CHECKOUT_WEIGHTS_DIR", tmp_path / "checkout")


def restored_logger():
    """The emonet logger's state, and the function that puts it back (after in-process CLI
    runs, which set it up)."""
    logger = logging.getLogger("emonet")
    saved = (list(logger.handlers), logger.level, logger.propagate)

    def restore() -> None:
        logger.handlers[:], logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])

    return restore


def run_cli(*args, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.run(
        [sys.executable, "-m", "emonet_cli", *map(str, args)],
        env={**clean, **(env or {})},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one error line of a run that failed as a user's mistake should: status 1, no
    traceback, nothing on stdout."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("emonet: error:")]
    return line


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_file(path: Path, content: bytes = b"weights") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def linked_copy(folder: Path, to: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """`to` holding the published EMOTIC files of `folder` (hard links) but `leave_out`."""
    to.mkdir()
    for name in PUBLISHED_FILES:
        if name not in leave_out:
            os.link(folder / name, to / name)
    return to
