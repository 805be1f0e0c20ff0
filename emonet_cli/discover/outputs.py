"""Where a request's file outputs go, checked before any work: DISCOVER creates no folder for
an output and would fail only when saving, after the whole video has been analysed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from discover_utils.utils.request_utils import Origin, parse_src_tag

from emonet_cli.discover.spec import RequestError

try:  # hcai-discover-utils 1.2: `uri_template` with {dataset} and {session}
    from discover_utils.data.provider.data_manager import resolve_file_uri
except ImportError:  # pragma: no cover - older releases know only `uri`

    def resolve_file_uri(desc: dict, dataset: str | None, session: str | None) -> Path:
        return Path(desc["uri"])


def output_file(session: Any, description: dict) -> Path | None:
    """The file an output description names for `session` (its `uri_template` filled in with
    the session's dataset and name, else its `uri`); None for outputs not saved to files."""
    if "src" not in description or parse_src_tag(description)[0] != Origin.FILE:
        return None
    if "uri_template" not in description and "uri" not in description:
        raise RequestError(f"output {description.get('id')!r} names no file (uri or uri_template)")
    try:
        return resolve_file_uri(
            description, getattr(session, "dataset", None), getattr(session, "session", None)
        )
    except ValueError as error:
        raise RequestError(f"output {description.get('id')!r}: {error}") from None


def check_output_folders(session: Any, output_ids: Iterable[str]) -> None:
    """Refuse, in one line, a file output whose folder is missing or not writable."""
    wanted = set(output_ids)
    for description in getattr(session, "data_description", None) or []:
        if description.get("type") != "output" or description.get("id") not in wanted:
            continue
        path = output_file(session, description)
        if path is None:
            continue
        folder = path.parent
        what = f"output {description['id']!r}: cannot write {path}"
        if not folder.is_dir():
            raise RequestError(f"{what}: no folder {folder} (DISCOVER does not create it)")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise RequestError(f"{what}: the folder {folder} is not writable")
