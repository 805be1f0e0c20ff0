"""File names whose bytes are not UTF-8, in text that must stay UTF-8.

Linux allows any bytes in a file name (recordings copied from old Windows or camera file
systems carry Latin-1 names). Python holds each byte that is not part of valid UTF-8 as a lone
surrogate, U+DC80 to U+DCFF (PEP 383: `b"clip\\xff.mp4"` is `"clip\\udcff.mp4"`), which no UTF-8
file can hold. Where such a name goes (docs/reliability.md):

- JSON (`S.emonet.json`, `S.failed.json`, `--json` lines): the JSON escape `\\udcff`, which
  Python's json module (and so every command that reads a summary) reads back as the very same
  name: `os.fsencode` of it gives the original bytes.
- Any other text (the CSV of `emonet report`, NOVA headers, the report's page, printed lines
  and error messages): the byte as `\\xff` (`clip\\xff.mp4`), what `shown_name` gives.
"""

from __future__ import annotations

import codecs
import os
import re
import sys

LONE_SURROGATE = re.compile("[\udc80-\udcff]")
SHOWN_BYTES = "emonet-shown-bytes"  # the error handler printing undecodable bytes as \xff


def shown_name(name: str | os.PathLike) -> str:
    """`name` (or any text holding names) as valid text: the bytes that are not UTF-8 as
    `\\xNN` (`clip\\xff.mp4`)."""
    text = os.fspath(name)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    if LONE_SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def json_escaped(text: str) -> str:
    """JSON text (as json.dumps writes it with ensure_ascii=False) with its lone surrogates,
    which occur only inside its strings, written as JSON escapes (`\\udcff`)."""
    return LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _shown_bytes(error: UnicodeError) -> tuple[str, int]:
    """A codec error handler: surrogates that stand for bytes as `\\xNN`, anything else that
    cannot be encoded as backslashreplace shows it."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    bad = error.object[error.start : error.end]
    shown = "".join(
        f"\\x{ord(char) - 0xDC00:02x}"
        if "\udc80" <= char <= "\udcff"
        else char.encode("ascii", "backslashreplace").decode("ascii")
        for char in bad
    )
    return shown, error.end


codecs.register_error(SHOWN_BYTES, _shown_bytes)


def show_names_on_stdio() -> None:
    """Make stdout and stderr print a name's undecodable bytes as `\\xNN` instead of failing
    with UnicodeEncodeError (stdout's default) or writing `\\udcff` (stderr's): every line the
    command line prints is then valid text in the terminal's encoding."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors=SHOWN_BYTES)
            except (ValueError, OSError):  # a closed or detached stream: nothing to print to
                pass
