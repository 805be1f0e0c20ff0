"""`S.failed.json`: what an input that failed leaves where its results would be, so that a
folder of results says which inputs are missing from it and why (`emonet report` lists them).

The record is written atomically when an input fails and removed when a later run of the same
input succeeds; where both it and an `S.emonet.json` are there, the newer one tells what the
last run of that input did.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from pathlib import Path

from emonet_cli import __version__
from emonet_cli.outputs.writers import input_identity, output_path, write_json

FAILURE_SUFFIX = ".failed.json"


def failure_path(path: Path, directory: Path | None) -> Path:
    """`S.failed.json` of the input `S.ext`, in `directory` or beside the input."""
    return output_path(Path(path), directory, FAILURE_SUFFIX)


def record_failure(path: Path, directory: Path | None, error: str, model: str) -> Path:
    """Write the failure record of `path`: the input, the one-line error, the model family,
    the tool and when (UTC)."""
    identity = None
    with contextlib.suppress(OSError):  # the input may be gone, or never have been there
        identity = input_identity(Path(path))
    document = {
        "input": str(path),
        "input_file": identity,
        "status": "failed",
        "error": error,
        "model": model,
        "tool": "emonet-cli",
        "version": __version__,
        "failed_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return write_json(failure_path(path, directory), document)


def clear_failure(path: Path, directory: Path | None) -> None:
    """Remove the failure record of `path` (after it was analysed), if there is one."""
    failure_path(path, directory).unlink(missing_ok=True)


def read_failure(record: Path) -> dict:
    """A failure record as written by `record_failure`; ValueError or OSError when it is not
    one."""
    document = json.loads(Path(record).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("error"), str):
        raise ValueError(f"{record}: not a failure record of emonet analyze")
    return document
