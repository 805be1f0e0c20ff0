"""`emonet plot`: one row per recording with valence and arousal over time, the expression as a
coloured ribbon under them, no-face spans shaded, frames whose face is not usable (the CSV's
usable column) hatched, and the valence/arousal scatter on the circumplex beside them.

matplotlib is an optional extra (`pip install 'emonet-cli[plot]'`); it is imported only when a
figure is drawn, and drawn with the Agg canvas, so no display is ever needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emonet_cli.constants import CLASS_COLORS, default_class_colors
from emonet_cli.errors import EmonetError
from emonet_cli.formats.fileio import atomic_path, remove_partial_files
from emonet_cli.formats.names import shown_name
from emonet_cli.outputs.results import Results, read_results

DEFAULT_WIDTH = 1400
# The figure is laid out at this physical width and rasterised at width / FIGURE_INCHES dots per
# inch, so that text, lines and markers keep their proportions at any pixel width.
FIGURE_INCHES = 14.0
ROW_HEIGHT = 0.24  # one recording's row, as a fraction of the figure width
LEGEND_HEIGHT = 0.035  # the legend band on top, same unit
VALENCE_COLOR = "#212121"
AROUSAL_COLOR = "#00897B"
NO_FACE_COLOR = "#B0BEC5"
UNUSABLE_COLOR = "#EF6C00"  # the hatching of frames with a face that is not usable
GUIDE_COLOR = "#BDBDBD"  # zero lines and the unit circle, quieter than the traces
INSTALL_HINT = "pip install 'emonet-cli[plot]'"


def class_color(name: str) -> str:
    """The NOVA colour of a published expression class as matplotlib's #RRGGBB."""
    return "#" + CLASS_COLORS[name][3:]


def class_colors(names: Sequence[str]) -> list[str]:
    """The colours of a model's classes (see constants.default_class_colors) as matplotlib's
    #RRGGBB (NOVA writes #AARRGGBB)."""
    return ["#" + color[3:] for color in default_class_colors(names)]


def runs(values: np.ndarray) -> list[tuple[int, int, object]]:
    """Maximal runs of equal values as (start, stop, value), stop exclusive."""
    if len(values) == 0:
        return []
    starts = np.flatnonzero(np.asarray(values[1:] != values[:-1])) + 1
    bounds = [0, *starts.tolist(), len(values)]
    return [(a, b, values[a]) for a, b in zip(bounds[:-1], bounds[1:])]


def plot_size(rows: int, width: int = DEFAULT_WIDTH) -> tuple[int, int]:
    """Pixel size of the figure for `rows` recordings: the width as asked, a fixed height each."""
    return width, round(width * (LEGEND_HEIGHT + rows * ROW_HEIGHT))


def _import_matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise EmonetError(f"emonet plot needs matplotlib: {INSTALL_HINT}") from None
    return Figure, FigureCanvasAgg


def plot_results(
    csv_paths: Sequence[str | Path], output: str | Path, width: int = DEFAULT_WIDTH
) -> Path:
    """Draw one row per results CSV into one picture `width` pixels wide (see `plot_size`);
    the format follows `output`'s extension."""
    if not csv_paths:
        raise ValueError("plot_results needs at least one CSV")
    output = Path(output)
    figure_class, canvas_class = _import_matplotlib()
    recordings = [read_results(path) for path in csv_paths]

    size = plot_size(len(recordings), width)
    dpi = width / FIGURE_INCHES
    figure = figure_class(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, layout="constrained")
    canvas = canvas_class(figure)
    file_format = output.suffix.lower().lstrip(".")
    if file_format not in canvas.get_supported_filetypes():
        raise EmonetError(
            f"{output}: cannot write a picture of type '{output.suffix}'; use .png, .svg or .pdf"
        )
    bands = figure.subfigures(
        len(recordings) + 1, 1, height_ratios=[LEGEND_HEIGHT] + [ROW_HEIGHT] * len(recordings)
    )
    for band, recording in zip(bands[1:], recordings):
        _draw_recording(band, recording)
    _draw_legend(bands[0], recordings)
    remove_partial_files(output)  # left by a run that was killed outright
    with atomic_path(output, suffix=output.suffix) as tmp:
        figure.savefig(tmp, format=file_format, dpi=dpi)
    return output


def _summary(recording: Results) -> str:
    edges = recording.frame_edges()
    text = (
        f"{shown_name(recording.path.name)}: {len(recording)} frames, "
        f"{edges[-1] - edges[0]:.1f} s, face in {recording.face.mean():.0%}"
    )
    if recording.usable is not None:
        text += f", usable {recording.usable.mean():.0%}"
    if recording.face.any():
        text += (
            f", mean valence {np.nanmean(recording.valence):+.2f}, "
            f"arousal {np.nanmean(recording.arousal):+.2f}"
        )
    return text


def _draw_recording(band, recording: Results) -> None:
    grid = band.add_gridspec(2, 2, width_ratios=[4.2, 1], height_ratios=[5, 1])
    lines = band.add_subplot(grid[0, 0])
    ribbon = band.add_subplot(grid[1, 0], sharex=lines)
    scatter = band.add_subplot(grid[:, 1])
    band.suptitle(_summary(recording), x=0.005, ha="left", fontsize="medium")
    edges = recording.frame_edges()
    colors = class_colors(recording.class_names)

    for start, stop, has_face in runs(recording.face):
        if not has_face:
            for axes in (lines, ribbon):
                axes.axvspan(edges[start], edges[stop], color=NO_FACE_COLOR, alpha=0.45, lw=0)
    if recording.usable is not None:
        for start, stop, unusable in runs(recording.face & ~recording.usable):
            if unusable:
                lines.axvspan(
                    edges[start], edges[stop], facecolor="none", edgecolor=UNUSABLE_COLOR,
                    hatch="///", alpha=0.5, lw=0,
                )  # fmt: skip
    lines.axhline(0.0, color=GUIDE_COLOR, lw=0.8)
    # Steps, not lines: each value holds for its frame, and a single face frame stays visible.
    for values, color, label in (
        (recording.valence, VALENCE_COLOR, "valence"),
        (recording.arousal, AROUSAL_COLOR, "arousal"),
    ):
        lines.stairs(values, edges, color=color, lw=1.4, label=label, baseline=None)
    lines.set_ylim(-1.05, 1.05)
    lines.set_xlim(edges[0], edges[-1])
    lines.set_ylabel("value")
    lines.grid(axis="y", alpha=0.3)
    lines.tick_params(labelbottom=False)

    for start, stop, label in runs(recording.expression):
        if label >= 0:
            ribbon.axvspan(edges[start], edges[stop], color=colors[label], lw=0)
    ribbon.set_yticks([])
    ribbon.set_ylabel("expr.", rotation=0, ha="right", va="center")
    ribbon.set_xlabel("time (s)")

    circle = np.linspace(0.0, 2.0 * np.pi, 181)
    scatter.plot(np.cos(circle), np.sin(circle), color=GUIDE_COLOR, lw=0.8)
    scatter.axhline(0.0, color=GUIDE_COLOR, lw=0.8)
    scatter.axvline(0.0, color=GUIDE_COLOR, lw=0.8)
    face = recording.face
    scatter.scatter(
        recording.valence[face],
        recording.arousal[face],
        c=[colors[label] for label in recording.expression[face]],
        s=10,
        alpha=0.5,
        lw=0,
    )
    scatter.set_xlim(-1.1, 1.1)
    scatter.set_ylim(-1.1, 1.1)
    scatter.set_aspect("equal")
    scatter.set_xlabel("valence")
    scatter.set_ylabel("arousal")
    scatter.set_xticks([-1, 0, 1])
    scatter.set_yticks([-1, 0, 1])


def _draw_legend(band, recordings: list[Results]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    classes = {}  # name -> colour, in the order of the recordings' classes
    for recording in recordings:
        for name, color in zip(recording.class_names, class_colors(recording.class_names)):
            classes.setdefault(name, color)
    handles = [
        Line2D([], [], color=VALENCE_COLOR, lw=1.6, label="valence"),
        Line2D([], [], color=AROUSAL_COLOR, lw=1.6, label="arousal"),
        Patch(color=NO_FACE_COLOR, alpha=0.45, label="no face"),
        *(
            [Patch(facecolor="none", edgecolor=UNUSABLE_COLOR, hatch="///", label="not usable")]
            if any(r.usable is not None for r in recordings)
            else []
        ),
        *(Patch(color=color, label=name) for name, color in classes.items()),
    ]
    band.legend(handles=handles, loc="center", ncol=len(handles), frameon=False)
