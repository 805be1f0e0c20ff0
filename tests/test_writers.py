"""The output registry: every registered writer publishes exactly the files it declares on close
and leaves nothing on abort; the plan of outputs follows the registry."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from emonet_cli.constants import CLASS_NAMES, EMBEDDING_SIZE, N_LANDMARKS, Classes
from emonet_cli.media.frames import MediaInfo
from emonet_cli.models.registry import FAMILIES
from emonet_cli.outputs.context import close_all
from emonet_cli.outputs.results import ResultBatch
from emonet_cli.outputs.writers import (
    OutputOptions,
    WriterContext,
    family_outputs,
    open_writers,
    output_path,
    planned_outputs,
)

ALL_ON = OutputOptions(landmarks=True, embeddings=True, box_stream=True, pose=True)
# Every output of every family, with the family whose results it writes (timm's habit).
FAMILY_OUTPUTS = [
    pytest.param(name, output, id=f"{name}{output.suffix}")
    for name, entry in FAMILIES.items()
    for output in family_outputs(entry)
]


def family_batch(name: str, frames: int = 6) -> ResultBatch:
    """A batch of what family `name` gives: EmoNet's 8 classes, or none and its categories."""
    entry = FAMILIES[name]
    result = batch(frames, 8 if entry.gives("expression") else 0)
    if entry.gives("dominance"):
        result.dominance = np.where(result.face, 0.1, np.nan).astype(np.float32)
    if entry.categories:
        count = len(entry.categories)
        result.categories = np.where(result.face[:, None], 0.5, np.nan).astype(np.float32)
        result.categories = np.broadcast_to(result.categories, (frames, count)).copy()
        result.category_set = result.face[:, None] & (np.arange(count) % 2 == 0)
    return result


def batch(frames: int = 6, nclass: int = 8) -> ResultBatch:
    face = np.arange(frames) % 3 != 2
    probabilities = np.full((frames, nclass), 1.0 / max(nclass, 1), dtype=np.float32)
    probabilities[~face] = np.nan
    return ResultBatch(
        frame=np.arange(frames),
        time=np.arange(frames) / 25.0,
        face=face,
        face_conf=np.where(face, 0.9, 0.0).astype(np.float32),
        expression=np.where(face & (nclass > 0), 1, -1),
        probabilities=probabilities,
        valence=np.where(face, 0.25, np.nan).astype(np.float32),
        arousal=np.where(face, -0.5, np.nan).astype(np.float32),
        landmarks=np.zeros((frames, N_LANDMARKS, 2), dtype=np.float32),
        embedding=np.zeros((frames, EMBEDDING_SIZE), dtype=np.float32),
        detection=np.tile(np.r_[0.1, 0.2, 0.5, 0.6, np.zeros(12), 0.9], (frames, 1)),
    )


def context(folder: Path, options: OutputOptions = ALL_ON, name: str = "emonet") -> WriterContext:
    info = MediaInfo(folder / "clip.mp4", 64, 48, 25.0, 6, is_image=False)
    options = replace(options, family=name)
    nclass = 8 if FAMILIES[name].gives("expression") else 0
    classes = None if nclass else Classes((), ())
    meta = {"role": "clip", "annotator": "t", "description": ""}
    return WriterContext(info, nclass, options, meta, classes=classes)


@pytest.mark.parametrize(("name", "output"), FAMILY_OUTPUTS)
def test_close_publishes_every_declared_path(name, output, tmp_path):
    path = output_path(tmp_path / "clip.mp4", None, output.suffix)
    writer = output.open(path, context(tmp_path, name=name))
    writer.add(family_batch(name))
    writer.close()
    assert path in writer.paths
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in writer.paths)


@pytest.mark.parametrize(("name", "output"), FAMILY_OUTPUTS)
def test_abort_leaves_nothing(name, output, tmp_path):
    path = output_path(tmp_path / "clip.mp4", None, output.suffix)
    writer = output.open(path, context(tmp_path, name=name))
    writer.add(family_batch(name))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_planned_outputs_follow_the_registry(tmp_path):
    video, image = tmp_path / "clip.mp4", tmp_path / "photo.jpg"
    assert [p.name for p in planned_outputs(video, OutputOptions())] == [
        "clip.csv",
        "clip.expression.annotation",
        "clip.valence.annotation",
        "clip.arousal.annotation",
        "clip.emonet.json",
    ]
    assert [p.name for p in planned_outputs(image, ALL_ON)] == [
        "photo.csv",
        "photo.landmarks.stream",
        "photo.embedding.stream",
        "photo.stream",
        "photo.pose.stream",
        "photo.emonet.json",
    ]
    out = tmp_path / "out"
    planned = planned_outputs(video, OutputOptions(directory=out, landmarks=True))
    assert all(p.parent == out for p in planned)


def test_open_writers_opens_one_writer_per_applicable_output(tmp_path):
    writers = open_writers(context(tmp_path))
    try:
        assert len(writers) == len(family_outputs(FAMILIES["emonet"]))
    finally:
        for writer in writers:
            writer.abort()
    assert list(tmp_path.iterdir()) == []
    assert CLASS_NAMES[8][1] == "Happy"  # the class the batch above uses


@pytest.mark.parametrize(
    "module",
    [
        "emonet_cli.outputs.writers",
        "emonet_cli.outputs.results",
        "emonet_cli.views.plot",
        "emonet_cli.cli",
    ],
)
def test_modules_that_never_run_the_model_import_no_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_no_file_appears_when_any_writer_cannot_finish(tmp_path):
    """A disk that fills up while the last output is written out: the outputs already
    finished must not appear beside an earlier run's files."""

    class FullDisk:
        paths: list[Path] = []

        def add(self, batch):
            pass

        def finish(self):
            raise OSError(28, "No space left on device", str(tmp_path / "clip.last"))

        def publish(self):
            raise AssertionError("never published after a failed finish")

        def abort(self):
            pass

    writers = [*open_writers(context(tmp_path)), FullDisk()]
    for writer in writers:
        writer.add(batch())
    with pytest.raises(OSError, match="No space left"):
        close_all(writers)
    for writer in writers:
        writer.abort()
    assert list(tmp_path.iterdir()) == []
