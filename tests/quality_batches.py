"""Results of every model family with varied numbers (random, NaN without a face), written by
the CSV writer: the bytes main wrote before the quality columns were appended are kept in
tests/data/csv_before_quality/ (made by running `write_family_csv` with the code of the
commit before them), and test_quality.py checks that the CSV of today, its appended columns
dropped, is those very bytes. Only APIs that existed before the quality columns are used."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emonet_cli.constants import EMBEDDING_SIZE, N_LANDMARKS
from emonet_cli.media.frames import MediaInfo
from emonet_cli.models.registry import FAMILIES
from emonet_cli.outputs.results import ResultBatch
from emonet_cli.outputs.writers import CsvWriter, OutputOptions, WriterContext

FRAMES = 40
GOLDEN = Path(__file__).resolve().parent / "data" / "csv_before_quality"


def family_batch(name: str, seed: int = 39) -> ResultBatch:
    """40 frames of one family's results: a face in most, values from a seeded generator in
    float32 (their shortest text is long), categories above and below their thresholds."""
    entry = FAMILIES[name]
    rng = np.random.default_rng(seed)
    nclass = 8 if entry.gives("expression") else 0
    face = rng.random(FRAMES) > 0.25
    logits = rng.normal(size=(FRAMES, nclass))
    probabilities = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    probabilities[~face] = np.nan
    expression = np.where(face, logits.argmax(axis=1) if nclass else -1, -1)

    def signed():
        return np.where(face, rng.uniform(-1, 1, FRAMES), np.nan).astype(np.float32)

    result = ResultBatch(
        frame=np.arange(FRAMES, dtype=np.int64),
        time=np.arange(FRAMES) / 29.97,
        face=face,
        face_conf=np.where(face, rng.uniform(0.5, 1, FRAMES), 0.0).astype(np.float32),
        expression=expression.astype(np.int64),
        probabilities=probabilities,
        valence=signed(),
        arousal=signed(),
        landmarks=np.full((FRAMES, N_LANDMARKS, 2), np.nan, dtype=np.float32),
        embedding=np.full((FRAMES, EMBEDDING_SIZE), np.nan, dtype=np.float32),
    )
    if entry.gives("dominance"):
        result.dominance = signed()
    if entry.categories:
        count = len(entry.categories)
        scores = rng.uniform(0, 1, (FRAMES, count)).astype(np.float32)
        result.categories = np.where(face[:, None], scores, np.nan).astype(np.float32)
        result.category_set = face[:, None] & (scores > 0.6)
    return result


def write_family_csv(name: str, folder: Path, batch: ResultBatch | None = None) -> Path:
    """`clip.csv` of a family's batch (default: `family_batch(name)`) in `folder`."""
    entry = FAMILIES[name]
    nclass = 8 if entry.gives("expression") else 0
    info = MediaInfo(folder / "clip.mp4", 640, 360, 29.97, FRAMES, is_image=False)
    options = OutputOptions(directory=folder, family=name)
    meta = {"role": "clip", "annotator": "emonet", "description": ""}
    context = WriterContext(info, nclass, options, meta)
    if not nclass:
        from emonet_cli.constants import Classes

        context = WriterContext(info, 0, options, meta, classes=Classes((), ()))
    writer = CsvWriter(folder / "clip.csv", context)
    writer.add(batch if batch is not None else family_batch(name))
    writer.close()
    return folder / "clip.csv"


if __name__ == "__main__":  # with the code of the commit before the quality columns
    import emonet_cli

    print("writing with", emonet_cli.__file__)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for family in FAMILIES:
        folder = GOLDEN / family
        folder.mkdir(exist_ok=True)
        write_family_csv(family, folder).rename(GOLDEN / f"{family}.csv")
        folder.rmdir()
