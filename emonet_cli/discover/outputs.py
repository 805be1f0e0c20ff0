"""Where a request's file outputs go, checked before any work: DISCOVER creates no folder for
an output and would fail only when saving, after the whole video has been analysed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from discover_utils.data.provider.data_manager import resolve_file_uri  # 1.2: uri_template
from discover_utils.utils.request_utils import Origin, parse_src_tag

from emonet_cli.discover.spec import RequestError


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


def check_declared_classes(session: Any, expression_ids: Iterable[str], names: list[str]) -> None:
    """Refuse an expression output whose request declares `classes` (hcai-discover-utils 1.2
    builds the output's scheme from them) other than the model's: the module writes the
    model's class names, in its order."""
    wanted = set(expression_ids)
    for description in getattr(session, "data_description", None) or []:
        declared = description.get("classes")
        if description.get("id") not in wanted or not isinstance(declared, dict):
            continue
        try:
            given = [declared[key].get("name") for key in sorted(declared, key=int)]
        except (AttributeError, TypeError, ValueError):
            raise RequestError(
                f"output {description['id']!r}: classes must map ids 0, 1, ... to "
                f'{{"name": ...}}, not {declared!r}'
            ) from None
        if given != list(names):
            raise RequestError(
                f"output {description['id']!r}: the request's classes "
                f"({', '.join(map(str, given))}) are not the model's ({', '.join(names)})"
            )
