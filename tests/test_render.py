"""`emonet render`: the annotated video, opened and checked frame by frame."""

from __future__ import annotations

import math
import shutil
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_cli
from click.testing import CliRunner

from emonet_cli.cli import cli
from emonet_cli.constants import CLASS_NAMES
from emonet_cli.demo import make_sample
from emonet_cli.errors import InputError
from emonet_cli.faces import BoxSource, read_boxes
from emonet_cli.faces.people import open_people
from emonet_cli.media.video import MediaReader
from emonet_cli.outputs.results import read_results
from emonet_cli.views.painter import FramePainter, FrameResult, class_rgb, output_size
from emonet_cli.views.render import find_stored_results, render_frames

FPS = 10.0
WIDTH, HEIGHT = 320, 240
FACE_FRAME, NO_FACE_FRAME = 3, 5  # the sample's face is gone from 0.5 s to 0.7 s


def model_args(weights: Path) -> list:
    return ["--weights", weights, "--device", "cpu", "--precision", "fp32", "--quiet"]


def decode(path: Path) -> list[np.ndarray]:
    """All frames of a small video as RGB."""
    with MediaReader(path) as reader:
        return [frame.image for frame in reader]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """1 s at 10 fps; frames 5 and 6 have no face."""
    folder = tmp_path_factory.mktemp("clip")
    return make_sample(folder, width=WIDTH, height=HEIGHT, fps=FPS, seconds=1.0, gap=(0.5, 0.7))


@pytest.fixture(scope="module")
def results_dir(sample, standin_weights, tmp_path_factory) -> Path:
    """The sample analysed with landmarks, into a folder of its own."""
    out = tmp_path_factory.mktemp("results")
    previous = signal.getsignal(signal.SIGTERM)  # analyze turns SIGTERM into Ctrl-C
    try:
        result = CliRunner().invoke(
            cli,
            [
                "analyze",
                str(sample.video),
                "--bbox",
                str(sample.boxes),
                "-o",
                str(out),
                "--landmarks",
                *map(str, model_args(standin_weights[8])),
            ],
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def stored_render(sample, results_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "out.mp4"
    proc = run_cli(
        "render",
        sample.video,
        "--bbox",
        sample.boxes,
        "--results-dir",
        results_dir,
        "-o",
        out,
        "--quiet",
    )
    return proc, out


def near(image: np.ndarray, color: tuple[int, int, int], tolerance: int = 40) -> np.ndarray:
    return (np.abs(image.astype(int) - color) <= tolerance).all(axis=-1)


def test_render_keeps_every_frame_and_adds_the_panel(sample, stored_render, results_dir):
    proc, out = stored_render
    assert str(results_dir / "astronaut.csv") in proc.stdout
    frames = decode(out)
    painter = FramePainter(WIDTH, HEIGHT, CLASS_NAMES[8])
    assert len(frames) == sample.frames
    assert all(f.shape == (painter.size[1], painter.size[0], 3) for f in frames)
    assert painter.size[0] > WIDTH and painter.size[1] >= HEIGHT
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS, rel=1e-3)
    capture.release()


def test_face_box_and_landmarks_are_drawn_on_the_face(sample, stored_render, results_dir):
    _, out = stored_render
    painter = FramePainter(WIDTH, HEIGHT, CLASS_NAMES[8])
    k = FACE_FRAME
    shown = decode(out)[k][painter.frame_top : painter.frame_top + HEIGHT, :WIDTH].astype(int)
    original = decode(sample.video)[k].astype(int)
    changed = np.abs(shown - original).max(axis=-1) > 60
    x1, y1, x2, y2 = np.round(read_boxes(sample.boxes, (WIDTH, HEIGHT)).boxes[k]).astype(int)
    assert changed[y1 : y2 + 1, x1 : x2 + 1].mean() > 0.03  # box outline, landmarks
    # The box's left edge is drawn in the colour of the predicted expression.
    table = read_results(results_dir / "astronaut.csv")
    color = class_rgb(table.class_names[table.expression[k]])
    assert near(shown[y1 + 4 : y2 - 4, x1 - 1 : x1 + 2], color).mean(axis=0).max() > 0.8
    # Far from the face the frame is the input's, up to compression noise.
    width, height = x2 - x1, y2 - y1
    far = np.ones_like(changed)
    far[max(0, y1 - height) : y2 + height, max(0, x1 - width) : x2 + width] = False
    assert changed[far].mean() < 0.005


def test_a_frame_without_face_says_so(sample, stored_render, results_dir):
    _, out = stored_render
    painter = FramePainter(WIDTH, HEIGHT, CLASS_NAMES[8])
    frames = decode(out)
    face, no_face = frames[FACE_FRAME], frames[NO_FACE_FRAME]
    assert not sample.face_frames[NO_FACE_FRAME]
    # The banner: bright text on the plain background where no face is shown.
    corner = np.s_[painter.frame_top : painter.frame_top + 30, :90]
    assert (no_face[corner].min(axis=-1) > 200).sum() > 30
    assert (decode(sample.video)[NO_FACE_FRAME][:30, :90].min(axis=-1) > 200).sum() == 0
    # The panel: no expression colour, and clearly different from a face frame's.
    table = read_results(results_dir / "astronaut.csv")
    color = class_rgb(table.class_names[table.expression[FACE_FRAME]])
    face_panel, no_face_panel = face[:, WIDTH:].astype(int), no_face[:, WIDTH:].astype(int)
    assert near(face_panel, color, 25).sum() > 100
    assert near(no_face_panel, color, 25).sum() < 10
    assert np.abs(face_panel - no_face_panel).mean() > 2.0


def test_every_and_max_width(sample, results_dir, tmp_path):
    out = tmp_path / "every.mp4"
    result = CliRunner().invoke(
        cli,
        [
            "render",
            str(sample.video),
            "--bbox",
            str(sample.boxes),
            "--results-dir",
            str(results_dir),
            "-o",
            str(out),
            "--every",
            "3",
            "--max-width",
            "400",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    frames = decode(out)
    width, height = output_size(FramePainter(WIDTH, HEIGHT, CLASS_NAMES[8]).size, 400)
    assert len(frames) == math.ceil(sample.frames / 3)
    assert frames[0].shape == (height, width, 3) and width <= 400
    capture = cv2.VideoCapture(str(out))
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS / 3, rel=1e-3)
    capture.release()


def test_without_results_the_model_runs_and_writes_nothing_else(
    sample, standin_weights, stored_render, tmp_path
):
    video = Path(shutil.copy(sample.video, tmp_path))
    boxes = Path(shutil.copy(sample.boxes, tmp_path))
    shutil.copy(f"{sample.boxes}~", tmp_path)
    before = set(tmp_path.iterdir())
    proc = run_cli(
        "render", video, "--bbox", boxes, "--batch-size", 4, *model_args(standin_weights[8])
    )
    out = tmp_path / "astronaut.render.mp4"
    assert "results from the model" in proc.stdout
    assert set(tmp_path.iterdir()) - before == {out}
    from_model = np.stack(decode(out)).astype(float)
    from_files = np.stack(decode(stored_render[1])).astype(float)
    assert from_model.shape == from_files.shape
    assert np.abs(from_model - from_files).mean() < 0.5  # same model, same pictures


def test_incomplete_results_are_not_used(sample, results_dir, tmp_path):
    lines = (results_dir / "astronaut.csv").read_text().splitlines(keepends=True)
    (tmp_path / "astronaut.csv").write_text("".join(lines[:4]))
    warnings: list[str] = []
    with MediaReader(sample.video) as reader:
        info = reader.info
    assert find_stored_results(sample.video, info, tmp_path, warnings.append) is None
    assert "3 rows" in warnings[0]

    (tmp_path / "astronaut.csv").write_text("".join(lines))
    stored = find_stored_results(sample.video, info, tmp_path, warnings.append)
    assert stored is not None and stored.landmarks is None
    assert "landmarks are not drawn" in warnings[1]
    stored = find_stored_results(sample.video, info, results_dir)
    assert stored.landmarks.shape == (sample.frames, 68, 2)


def test_a_failed_render_leaves_no_file(sample, tmp_path):
    with MediaReader(sample.video) as reader:
        info = reader.info
    people = open_people(BoxSource(full_frame=True), info)
    no_face = FrameResult(False, -1, np.full(8, np.nan), math.nan, math.nan, None)
    out = tmp_path / "short.mp4"
    with pytest.raises(InputError, match="results end at frame 3"):
        render_frames(sample.video, out, [no_face] * 3, people, CLASS_NAMES[8])
    assert list(tmp_path.iterdir()) == []


def test_shell_behaviour(sample, tmp_path):
    runner = CliRunner()
    empty = tmp_path / "no-boxes"
    args = ["render", str(sample.video), "--bbox-dir", str(empty), "-o", str(tmp_path / "o.mp4")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"emonet: error: {sample.video}: no face boxes in {empty} (looked for astronaut.stream "
        "and astronaut.csv)"
    ]
    result = runner.invoke(
        cli, ["render", str(sample.video), "--full-frame", "--bbox", str(sample.boxes)]
    )
    assert result.exit_code == 2
    result = runner.invoke(cli, ["render", str(sample.video), "--full-frame", "--every", "0"])
    assert result.exit_code == 2
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    result = runner.invoke(cli, ["render", str(image), "--full-frame"])
    assert result.exit_code == 1 and "takes a video" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.png"]
