"""A small EMOTIC dataset in the layout the real one ships in: `Annotations.mat` written with
scipy.io.savemat as nested struct arrays (train with one annotator, val and test with several
and their combined labels), and generated images in the dataset's folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emonet_cli.models.emotic.metrics import CATEGORIES

FOLDERS = ("mscoco/images", "framesdb/images", "emodb_small/images", "ade20k/images")
IMAGE_FIELDS = [
    ("filename", "O"),
    ("folder", "O"),
    ("image_size", "O"),
    ("original_database", "O"),
    ("person", "O"),
]
TRAIN_PERSON = [
    ("body_bbox", "O"),
    ("annotations_categories", "O"),
    ("annotations_continuous", "O"),
    ("gender", "O"),
    ("age", "O"),
]
TEST_PERSON = [
    ("body_bbox", "O"),
    ("annotations_categories", "O"),
    ("combined_categories", "O"),
    ("annotations_continuous", "O"),
    ("combined_continuous", "O"),
    ("gender", "O"),
    ("age", "O"),
]


def struct(fields: list[tuple[str, str]], rows: list[dict]) -> np.ndarray:
    """A 1xN MATLAB struct array."""
    array = np.empty((1, len(rows)), dtype=fields)
    for k, row in enumerate(rows):
        for name, _ in fields:
            array[0, k][name] = row[name]
    return array


def cell(names) -> np.ndarray:
    out = np.empty((1, len(names)), dtype=object)
    for k, name in enumerate(names):
        out[0, k] = name
    return out


def vad_struct(vad) -> np.ndarray:
    fields = [("valence", "O"), ("arousal", "O"), ("dominance", "O")]
    return struct(fields, [dict(zip(("valence", "arousal", "dominance"), map(float, vad)))])


def left_out_people(person: dict) -> list[dict]:
    """Two val/test people the reference leaves out: a missing (NaN) dominance, and no
    category annotator."""
    missing_vad = {**person, "combined_continuous": vad_struct((5.0, 5.0, float("nan")))}
    unannotated = {**person, "annotations_categories": struct([("categories", "O")], [])}
    return [missing_vad, unannotated]


def person_image(rng: np.random.Generator, boxes, cats) -> np.ndarray:
    """A picture whose people show their labels: a bright body for the first category held."""
    height, width = 96, 128
    image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    for (x1, y1, x2, y2), held in zip(boxes, cats):
        colour = (230, 40, 40) if 0 in held else (40, 40, 230)
        image[int(y1) : int(y2), int(x1) : int(x2)] = colour
    return image


def write_dataset(root: Path, counts=(10, 6, 6), seed: int = 0) -> Path:
    """root/Annotations/Annotations.mat and root/emotic/<folder>/<image>.jpg for `counts`
    images (train, val, test), two or three people each (and, on the first val and test
    image, two people the reference leaves out); returns the .mat path."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    images_root = root / "emotic"
    splits = {}
    for split, count in zip(("train", "val", "test"), counts):
        rows = []
        for index in range(count):
            folder = FOLDERS[index % len(FOLDERS)]
            name = f"{split}_{index:03d}.jpg"
            n_people = 2 + index % 2
            boxes, cats, people = [], [], []
            for p in range(n_people):
                x1 = 4 + p * 40
                box = [x1, 10 + p * 5, x1 + 30, 90]
                positive = (index + p) % 2 == 0
                held = [0, 16] if positive else [5, 11]
                boxes.append(box)
                cats.append(held)
                vad = (8.0, 6.0, 7.0) if positive else (3.0, 4.0, 5.0)
                names = [CATEGORIES[k] for k in held]
                bbox = np.array([box], dtype=np.float64)
                if split == "train":
                    person = {
                        "body_bbox": bbox,
                        "annotations_categories": struct([("categories", "O")],
                                                         [{"categories": cell(names)}]),
                        "annotations_continuous": vad_struct(vad),
                        "gender": "Female",
                        "age": "Adult",
                    }  # fmt: skip
                else:
                    # The annotators disagree; the combined labels are what counts.
                    annotators = [names[:1], names[1:]]
                    person = {
                        "body_bbox": bbox,
                        "annotations_categories": struct(
                            [("categories", "O")], [{"categories": cell(a)} for a in annotators]
                        ),
                        "combined_categories": cell(names),
                        "annotations_continuous": np.concatenate(
                            [vad_struct(vad), vad_struct(vad)], axis=1
                        ),
                        "combined_continuous": vad_struct(vad),
                        "gender": "Male",
                        "age": "Kid",
                    }
                people.append(person)
            if split != "train" and index == 0:
                people += left_out_people(people[0])
            fields = TRAIN_PERSON if split == "train" else TEST_PERSON
            rows.append(
                {
                    "filename": name,
                    "folder": folder,
                    "image_size": struct([("n_col", "O"), ("n_row", "O")],
                                         [{"n_col": 128.0, "n_row": 96.0}]),
                    "original_database": struct([("name", "O")], [{"name": folder.split("/")[0]}]),
                    "person": struct(fields, people),
                }
            )  # fmt: skip
            path = images_root / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            image = person_image(rng, boxes, cats)
            cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        splits[split] = struct(IMAGE_FIELDS, rows)
    mat = root / "Annotations" / "Annotations.mat"
    mat.parent.mkdir(parents=True, exist_ok=True)
    savemat(mat, splits)
    return mat
