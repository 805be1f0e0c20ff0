"""`emonet plot`: the timeline picture of results CSVs, opened and checked."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from emonet_cli.cli import cli
from emonet_cli.constants import CLASS_NAMES
from emonet_cli.media.frames import MediaInfo
from emonet_cli.outputs.results import ResultBatch
from emonet_cli.outputs.writers import CsvWriter, OutputOptions, WriterContext
from emonet_cli.views.plot import NO_FACE_COLOR, class_color, plot_size, runs

WIDTH = 900
FPS = 10.0


def write_results(path: Path, nclass: int = 8, face=None) -> Path:
    """A results CSV as `emonet analyze` writes it, 60 frames unless `face` (per frame) says
    otherwise: the expression changes every second."""
    face = np.ones(60, dtype=bool) if face is None else np.asarray(face)
    frames = len(face)
    time = np.arange(frames) / FPS
    expression = np.where(face, (np.arange(frames) // 10) % nclass, -1)
    probabilities = np.full((frames, nclass), 0.05, dtype=np.float32)
    probabilities[np.flatnonzero(face), expression[face]] = 1.0 - 0.05 * (nclass - 1)
    probabilities[~face] = np.nan
    batch = ResultBatch(
        frame=np.arange(frames),
        time=time,
        face=face,
        face_conf=np.where(face, 0.98, 0.0).astype(np.float32),
        expression=expression,
        probabilities=probabilities,
        valence=np.where(face, 0.8 * np.sin(time), np.nan).astype(np.float32),
        arousal=np.where(face, 0.6 * np.cos(time), np.nan).astype(np.float32),
        landmarks=np.full((frames, 68, 2), np.nan, dtype=np.float32),
        embedding=np.full((frames, 256), np.nan, dtype=np.float32),
    )
    info = MediaInfo(path, 320, 240, FPS, frames, is_image=False)
    writer = CsvWriter(path, WriterContext(info, nclass, OutputOptions(), {}))
    writer.add(batch)
    writer.close()
    return path


def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def pixels_like(image: np.ndarray, hex_color: str, alpha: float = 1.0) -> int:
    """How many pixels have `hex_color` drawn with `alpha` over white."""
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)])
    expected = alpha * rgb + (1.0 - alpha) * 255.0
    return int((np.abs(image.astype(float) - expected) <= 8).all(axis=-1).sum())


def plot(*args: str) -> object:
    return CliRunner().invoke(cli, ["plot", *args, "--width", str(WIDTH)])


def test_one_csv_gives_a_row_with_lines_ribbon_and_shading(tmp_path):
    face = np.ones(60, dtype=bool)
    face[25:35] = False
    csv = write_results(tmp_path / "clip.csv", face=face)
    result = plot(str(csv))
    assert result.exit_code == 0, result.output
    out = tmp_path / "clip.plot.png"
    assert result.output.strip() == str(out)
    image = read_png(out)
    assert (image.shape[1], image.shape[0]) == plot_size(1, WIDTH)
    assert image.std() > 20
    # The ribbon shows each expression of the clip in its NOVA colour; the gap is shaded.
    shown = {label for _, _, label in runs(np.where(face, np.arange(60) // 10, -1))} - {-1}
    for label in shown:
        assert pixels_like(image, class_color(CLASS_NAMES[8][label])) > 200
    assert pixels_like(image, NO_FACE_COLOR, 0.45) > 1000


def test_several_csvs_give_one_row_each(tmp_path):
    first = write_results(tmp_path / "a.csv")
    second = write_results(tmp_path / "b.csv", nclass=5, face=np.ones(30, dtype=bool))
    out = tmp_path / "folder.png"
    result = plot(str(first), str(second), "-o", str(out))
    assert result.exit_code == 0, result.output
    image = read_png(out)
    assert (image.shape[1], image.shape[0]) == plot_size(2, WIDTH)
    assert plot_size(2, WIDTH)[1] > plot_size(1, WIDTH)[1]
    assert image.std() > 20


def test_a_recording_without_any_face_still_plots(tmp_path):
    csv = write_results(tmp_path / "empty.csv", face=np.zeros(40, dtype=bool))
    out = tmp_path / "empty.png"
    result = plot(str(csv), "-o", str(out))
    assert result.exit_code == 0, result.output
    image = read_png(out)
    assert (image.shape[1], image.shape[0]) == plot_size(1, WIDTH)
    assert image.std() > 20
    assert pixels_like(image, NO_FACE_COLOR, 0.45) > 10_000


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("frame,x1,y1,x2,y2\n0,1,2,3,4\n", "no column"),
        ("frame,time\n0,abc\n", "not an emonet results CSV"),
        ("", "not an emonet results CSV"),
    ],
)
def test_a_missing_or_malformed_csv_is_one_line_and_status_1(tmp_path, content, message):
    csv = tmp_path / "bad.csv"
    if content is not None:
        csv.write_text(content)
    result = plot(str(csv), "-o", str(tmp_path / "out.png"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"emonet: error: {csv}") and message in lines[0]
    assert not (tmp_path / "out.png").exists()


def test_an_unknown_picture_type_is_refused(tmp_path):
    csv = write_results(tmp_path / "clip.csv")
    result = plot(str(csv), "-o", str(tmp_path / "clip.xyz"))
    assert result.exit_code == 1 and "use .png" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.csv"]


def test_without_matplotlib_the_message_says_how_to_install_it(tmp_path, monkeypatch):
    csv = write_results(tmp_path / "clip.csv")
    for name in [name for name in sys.modules if name.startswith("matplotlib")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)  # None makes `import` fail
    result = plot(str(csv))
    assert result.exit_code == 1
    assert "pip install 'emonet-cli[plot]'" in result.output
    assert not (tmp_path / "clip.plot.png").exists()
