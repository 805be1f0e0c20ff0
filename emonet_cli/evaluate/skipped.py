"""Why nothing could be scored: the skipped images grouped by reason, each with its first file,
so that the message names the cause (a box off its image is not an unreadable image)."""

from __future__ import annotations

from collections.abc import Iterable

from emonet_cli.errors import EmonetError

OFF_IMAGE = "the box lies outside the image"


def nothing_scored(what: str, skipped: Iterable[tuple[int, str, str]]) -> EmonetError:
    """The error of an evaluation that scored nothing: `skipped` holds (label line, image,
    reason) of every row that was skipped, e.g. `no labelled person could be scored: the box
    lies outside the image: images/a.jpg (line 2)`."""
    reasons: dict[str, list[tuple[int, str]]] = {}
    for line, image, reason in skipped:
        reasons.setdefault(reason, []).append((line, image))
    if not reasons:
        return EmonetError(f"no {what} could be scored: the labels hold none")
    causes = "; ".join(
        f"{reason}: {rows[0][1]} (line {rows[0][0]})"
        + (f" and {len(rows) - 1} more" if len(rows) > 1 else "")
        for reason, rows in sorted(reasons.items(), key=lambda item: -len(item[1]))
    )
    return EmonetError(f"no {what} could be scored: {causes}")
