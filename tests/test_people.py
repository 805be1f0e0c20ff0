"""Several people per video: the tracker, box files with several faces, `--max-faces` in detect,
analyze and render, per-person outputs, and the DISCOVER module's per-person output ids."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli

from emonet_cli.demo import make_people_sample
from emonet_cli.errors import FormatError
from emonet_cli.faces.align import affine_from_box, crop_face
from emonet_cli.faces.boxfiles import read_box_file, read_boxes
from emonet_cli.faces.tracking import Tracker, iou
from emonet_cli.media.video import MediaReader
from emonet_cli.models.emonet.checkpoint import load_model
from emonet_cli.models.emonet.inference import Predictor
from emonet_cli.outputs.results import read_results_csv

# --- the tracker, on boxes alone ---


def track(frames: list[np.ndarray], max_faces: int = 3, patience: float = 1.0, fps: float = 10):
    """The ids the tracker gives each frame's boxes (scores fall with the box's position)."""
    tracker = Tracker(fps, max_faces=max_faces, patience=patience)
    return [
        list(tracker.update(i, boxes, np.linspace(0.9, 0.8, len(boxes))))
        for i, boxes in enumerate(frames)
    ]


def square(x: float, y: float, side: float = 40.0) -> np.ndarray:
    return np.array([x, y, x + side, y + side])


def test_ids_follow_faces_that_cross_thanks_to_their_motion():
    """Two equal faces swap sides at 12 px per frame; where they meet they overlap each other
    more than their own last box, and only the predicted motion keeps them apart."""
    frames = []
    for i in range(20):
        a, b = square(20 + 12 * i, 50), square(248 - 12 * i, 56)
        frames.append(np.array([a, b]) if i % 2 else np.array([b, a]))  # order must not matter
    ids = track(frames)
    first_a = ids[0][1]
    for i, frame_ids in enumerate(ids):
        a_id = frame_ids[1] if i % 2 == 0 else frame_ids[0]
        assert a_id == first_a, (i, frame_ids)
    assert sorted({i for frame in ids for i in frame}) == [1, 2]


def test_a_short_miss_keeps_the_id_a_long_one_starts_a_new_person():
    moving = [square(10 + 5 * i, 10) for i in range(40)]
    short = [np.array([b]) if not 10 <= i < 15 else np.zeros((0, 4)) for i, b in enumerate(moving)]
    assert {i for frame in track(short) for i in frame} == {1}
    long = [np.array([b]) if not 10 <= i < 25 else np.zeros((0, 4)) for i, b in enumerate(moving)]
    ids = [frame for frame in track(long) if frame]
    assert ids[0] == [1] and ids[-1] == [2]  # 1.5 s unseen, patience 1 s


def test_a_new_face_becomes_a_person_once_confirmed():
    """--track-confirm 3: a false detection in 1 frame, another in 2 frames in a row and a third
    in 2 frames with a gap make no person; a face seen from frame 4 becomes person 1 in frame
    6, its third in a row, and keeps the number through a 2-frame miss; numbers have no gaps."""
    face = [square(100 + 3 * i, 100) for i in range(20)]
    flicker = {2: square(300, 20), 7: square(20, 200), 8: square(20, 200), 11: square(300, 300),
               13: square(300, 300)}  # fmt: skip
    frames = []
    for i in range(20):
        boxes = [face[i]] if i >= 4 and i not in (12, 13) else []
        boxes += [flicker[i]] if i in flicker else []
        frames.append(np.array(boxes).reshape(-1, 4))
    tracker = Tracker(10, max_faces=3, confirm=3)
    ids = [list(tracker.update(i, b, np.full(len(b), 0.9))) for i, b in enumerate(frames)]
    assert [i for i, frame in enumerate(ids) if 1 in frame] == [6, 7, 8, 9, 10, 11, *range(14, 20)]
    assert all(set(frame) <= {0, 1} for frame in ids)
    assert ids[4] == [0] and ids[5] == [0]  # the face's first two frames, still a candidate
    # confirm=1 (the default): every detection is a person at once, as before.
    assert max(max(frame, default=0) for frame in track(frames)) == 4


def test_max_faces_keeps_the_best_scoring_detections():
    tracker = Tracker(10, max_faces=2)
    ids = tracker.update(0, np.array([square(0, 0), square(100, 0), square(200, 0)]),
                         np.array([0.6, 0.9, 0.8]))  # fmt: skip
    assert list(ids) == [0, 1, 2]


def test_iou():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    np.testing.assert_allclose(iou(boxes[:1], boxes)[0], [1.0, 50 / 150, 0.0])


@pytest.mark.parametrize("bad", [{"max_faces": 0}, {"patience": -1.0}, {"confirm": 0}])
def test_the_tracker_refuses_nonsense_settings(bad):
    with pytest.raises(ValueError):
        Tracker(10, **bad)


# --- box files with several faces ---


def test_a_csv_with_a_face_column_holds_one_person_per_face(tmp_path):
    path = tmp_path / "faces.csv"
    path.write_text("frame,time,face,x1,y1,x2,y2,conf\n0,0,2,1,2,3,4,0.9\n0,0,1,5,6,7,8,1\n"
                    "3,0.3,2,1,2,3,5,0.8\n")  # fmt: skip
    people = read_box_file(path)
    assert list(people) == [1, 2]
    np.testing.assert_array_equal(people[2].frames, [0, 3])
    np.testing.assert_array_equal(people[2].boxes[1], [1, 2, 3, 5])
    with pytest.raises(FormatError, match="face column"):
        read_boxes(path)
    path.write_text("frame,face,x1,y1,x2,y2\n0,1,1,2,3,4\n0,1,1,2,3,4\n")
    with pytest.raises(FormatError, match="face 1 in frame 0 appears twice"):
        read_box_file(path)
    path.write_text("frame,face,x1,y1,x2,y2\n0,x,1,2,3,4\n")
    with pytest.raises(FormatError, match="is not a number"):
        read_box_file(path)


# --- generated videos through the CLI ---


def faces_rows(path: Path) -> dict[int, list[tuple[int, np.ndarray]]]:
    """{frame: [(face, box)]} of an S.faces.csv."""
    found = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            box = np.array([float(row[k]) for k in ("x1", "y1", "x2", "y2")])
            found[int(row["frame"])].append((int(row["face"]), box))
    return found


def id_switches(truth: np.ndarray, found: dict) -> tuple[int, int]:
    """Id switches along each true person's frames (the tracked face overlapping them most),
    and the true faces no tracked face overlaps."""
    switches = missed = 0
    for person in truth:
        ids = []
        for frame, box in enumerate(person):
            if np.isnan(box).any():
                continue
            candidates = found.get(frame, [])
            overlap = iou(box[None], np.array([b for _, b in candidates]).reshape(-1, 4))[0]
            if not len(candidates) or overlap.max() < 0.3:
                missed += 1
                continue
            ids.append(candidates[int(overlap.argmax())][0])
        switches += sum(a != b for a, b in zip(ids, ids[1:]))
    return switches, missed


@pytest.fixture(scope="module")
def three_people(tmp_path_factory):
    """Three people: two crossing, one leaving the frame and coming back, one hidden behind a
    panel for a moment; `emonet detect --max-faces 3` run on it."""
    folder = tmp_path_factory.mktemp("three")
    sample = make_people_sample(folder, people=3)
    run_cli("detect", str(sample.video), "--max-faces", "3", "-o", str(folder / "out"), "-q")
    return sample, folder / "out"


def test_ids_stay_with_people_through_crossing_leaving_and_occlusion(three_people):
    sample, out = three_people
    switches, missed = id_switches(sample.boxes, faces_rows(out / "people.faces.csv"))
    faces = np.isfinite(sample.boxes[..., 0]).sum()
    print(f"id switches {switches}, true faces missed {missed} of {faces}")
    assert switches <= 1
    assert missed <= 0.15 * faces


def test_track_confirm_costs_each_person_their_first_frames_only(three_people, tmp_path):
    """--track-confirm 3 on the same clip: the same three people, each listed from their
    third frame in a row on, with the same boxes (numbered in order of confirmation)."""
    sample, out = three_people
    run_cli("detect", str(sample.video), "--max-faces", "3", "--track-confirm", "3",
            "-o", str(tmp_path), "-q")  # fmt: skip
    before, after = faces_rows(out / "people.faces.csv"), faces_rows(tmp_path / "people.faces.csv")

    def frames_of(rows: dict) -> dict[int, list[int]]:
        found = defaultdict(list)
        for frame in sorted(rows):
            for face, _ in rows[frame]:
                found[face].append(frame)
        return found

    seen_before, seen_after = frames_of(before), frames_of(after)
    assert sorted(seen_after) == sorted(seen_before) == [1, 2, 3]
    # Numbers follow the order of confirmation: people are matched by their frames.
    person_after = {tuple(frames): person for person, frames in seen_after.items()}
    for person, frames in seen_before.items():
        assert frames[2] - frames[0] == 2  # seen in their first three frames in a row
        same = person_after[tuple(frames[2:])]
        for frame in frames[2:]:
            box = dict(before[frame])[person]
            np.testing.assert_array_equal(dict(after[frame])[same], box)


def test_detect_writes_a_discover_stream_per_person(three_people):
    from emonet_cli.formats.streams import read_stream

    sample, out = three_people
    faces = faces_rows(out / "people.faces.csv")
    people = sorted({face for rows in faces.values() for face, _ in rows})
    assert people == [1, 2, 3]
    for person in people:
        stream = read_stream(out / f"people.face{person}.stream")
        keypoints = read_stream(out / f"people.face{person}.keypoints.stream")
        assert stream.data.shape == (sample.frames, 5) and keypoints.data.shape[1] == 13
        boxes = read_boxes(out / f"people.face{person}.stream", (640, 360))
        seen = [f for f, rows in faces.items() if any(face == person for face, _ in rows)]
        # The stream has the person's fresh box where the overview lists them, confidence 0
        # elsewhere (the last box repeated; the whole frame before their first).
        assert set(np.flatnonzero(boxes.conf > 0)) == set(seen)
        for frame in seen:
            box = next(b for face, b in faces[frame] if face == person)
            np.testing.assert_array_equal(boxes.boxes[frame], box)
        first = min(seen)
        np.testing.assert_array_equal(stream.data[:first, :4], np.tile([0, 0, 1, 1], (first, 1)))


@pytest.fixture(scope="module")
def two_people(tmp_path_factory, standin_weights):
    """A short two-person clip analysed with --max-faces 2 (and landmarks)."""
    folder = tmp_path_factory.mktemp("two")
    sample = make_people_sample(folder, people=2, seconds=0.5, fps=8, occlusion=None, travel=0.2)
    out = folder / "out"
    common = ["--weights", str(standin_weights[8]), "--precision", "fp32", "--device", "cpu"]
    run_cli("analyze", str(sample.video), "--max-faces", "2", "--landmarks", "-o", str(out),
            "-q", *common)  # fmt: skip
    return sample, out, common


def test_analyze_writes_one_result_set_per_person(two_people):
    sample, out, _ = two_people
    summary = json.loads((out / "people.emonet.json").read_text())
    people = [entry["person"] for entry in summary["people"]]
    assert people == ["face1", "face2"]
    assert summary["frames"] == sample.frames
    for entry in summary["people"]:
        person = entry["person"]
        for suffix in ("csv", "expression.annotation", "valence.annotation",
                       "arousal.annotation", "landmarks.stream", "stream"):  # fmt: skip
            assert (out / f"people.{person}.{suffix}").is_file(), suffix
        table = read_results_csv(out / f"people.{person}.csv")
        assert len(table["frame"]) == sample.frames
        assert entry["frames_with_face"] == int(table["face"].sum()) > 0
        assert sum(entry["expression_histogram"].values()) == entry["frames_with_face"]
        np.testing.assert_allclose(
            entry["mean_valence"], table["valence"][table["face"] == 1].mean(), rtol=1e-5
        )
    assert not (out / "people.csv").exists()


def test_each_persons_results_equal_the_model_on_their_aligned_crops(two_people, standin_weights):
    sample, out, _ = two_people
    faces = faces_rows(out / "people.faces.csv")
    predictor = Predictor(load_model(standin_weights[8]).model, "cpu", "fp32")
    with MediaReader(sample.video) as reader:
        frames = {frame.index: frame.image for frame in reader}
    tables = {k: read_results_csv(out / f"people.face{k}.csv") for k in (1, 2)}
    crops, where = [], []
    for frame, rows in sorted(faces.items()):
        for person, box in rows:
            crops.append(crop_face(frames[frame], affine_from_box(box)))
            where.append((person, frame))
    predictions = predictor(np.stack(crops))
    assert len(where) == sum(int(t["face"].sum()) for t in tables.values())
    for k, (person, frame) in enumerate(where):
        table = tables[person]
        assert table["face"][frame] == 1
        np.testing.assert_allclose(table["valence"][frame], predictions.valence[k], atol=1e-5)
        np.testing.assert_allclose(table["arousal"][frame], predictions.arousal[k], atol=1e-5)


def test_the_box_files_of_an_analysis_reproduce_it(two_people, tmp_path):
    """The per-person streams (`--bbox A --bbox B`) and the overview (a CSV with a face
    column) give the very same per-person results as detecting did, whatever --max-faces."""
    sample, out, common = two_people
    streams = [str(out / f"people.face{k}.stream") for k in (1, 2)]
    run_cli("analyze", str(sample.video), "--bbox", streams[0], "--bbox", streams[1],
            "-o", str(tmp_path / "streams"), "-q", *common)  # fmt: skip
    # --max-faces counts detected faces only: here the CSV decides, and a warning says so.
    proc = run_cli("analyze", str(sample.video), "--bbox", str(out / "people.faces.csv"),
                   "--max-faces", "3", "-o", str(tmp_path / "overview"), *common)  # fmt: skip
    assert "emonet: warning: --max-faces counts detected faces: with --bbox" in proc.stderr
    for k in (1, 2):
        expected = (out / f"people.face{k}.csv").read_bytes()
        assert (tmp_path / "streams" / f"people.face{k}.csv").read_bytes() == expected
        assert (tmp_path / "overview" / f"people.face{k}.csv").read_bytes() == expected

    # The same rows but for identity's distances: box files decide people without it.
    def without_distances(path: Path) -> list[str]:
        return [line.rsplit(",", 1)[0] for line in path.read_text().splitlines()]

    reproduced = (tmp_path / "overview" / "people.faces.csv").read_text().splitlines()
    assert all(line.endswith(",") for line in reproduced[1:])
    assert without_distances(tmp_path / "overview" / "people.faces.csv") == without_distances(
        out / "people.faces.csv"
    )


def test_skip_existing_knows_a_finished_analysis_of_several_people(two_people):
    from emonet_cli.outputs.writers import OutputOptions, is_complete

    sample, out, common = two_people
    proc = run_cli("analyze", str(sample.video), "--max-faces", "2", "--landmarks", "-o",
                   str(out), "--skip-existing", *common)  # fmt: skip
    assert "skipped" in proc.stdout + proc.stderr
    options = OutputOptions(directory=out, landmarks=True)
    assert is_complete(sample.video, options)
    assert not is_complete(sample.video, OutputOptions(directory=out, embeddings=True))
    (out / "people.face2.landmarks.stream").rename(out / "moved")
    try:
        assert not is_complete(sample.video, options)
    finally:
        (out / "moved").rename(out / "people.face2.landmarks.stream")


def test_render_and_plot_show_every_person(two_people, tmp_path):
    import cv2

    sample, out, common = two_people
    video = tmp_path / "r.mp4"
    proc = run_cli("render", str(sample.video), "--max-faces", "2", "--results-dir", str(out),
                   "-o", str(video), "-q", *common)  # fmt: skip
    assert "stored per-person results" in proc.stdout
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == sample.frames
    capture.release()
    picture = tmp_path / "p.png"
    run_cli("plot", str(out / "people.face1.csv"), str(out / "people.face2.csv"),
            "-o", str(picture), "-q")  # fmt: skip
    assert picture.stat().st_size > 0


def test_the_discover_module_gives_each_person_their_own_outputs(
    two_people, tmp_path, standin_weights
):
    """du-process with max_faces 2: `expression_face2` is person 2's, the plain `valence` the
    main person's (most analysed frames), each equal to analyze's at DISCOVER's precision."""
    pytest.importorskip("discover_utils")
    from discover_utils.data.handler.file_handler import FileHandler
    from test_discover_module import discover_ascii, du_process, needs_ffprobe, succeeded

    from emonet_cli.discover import install_module
    from emonet_cli.formats.annotations import read_annotation

    if needs_ffprobe.args[0]:
        pytest.skip(needs_ffprobe.kwargs["reason"])
    sample, out, _ = two_people
    modules = tmp_path / "modules"
    modules.mkdir()
    install_module(modules)
    outputs = [("expression_face2", "discrete"), ("expression_face1", "discrete"),
               ("valence", "continuous")]  # fmt: skip
    data = [
        {"src": "file:stream:video", "type": "input", "id": "video", "uri": str(sample.video)},
        *(
            {
                "src": f"file:annotation:{kind}",
                "type": "output",
                "id": name,
                "uri": str(tmp_path / f"{name}.annotation"),
            }  # fmt: skip
            for name, kind in outputs
        ),
    ]
    options = {"precision": "fp32", "device": "cpu", "max_faces": 2}
    weights = standin_weights[8]
    succeeded(du_process(modules, data, ["--options", json.dumps(options)], weights, tmp_path))
    summary = json.loads((out / "people.emonet.json").read_text())
    main = max(summary["people"], key=lambda entry: entry["frames_with_face"])["person"]
    for name, person in (("expression_face2", "face2"), ("expression_face1", "face1")):
        ours = read_annotation(out / f"people.{person}.expression.annotation")
        loaded = FileHandler().load(tmp_path / f"{name}.annotation")
        np.testing.assert_array_equal(loaded.data["id"], ours.data["id"])
        np.testing.assert_array_equal(loaded.data["conf"], discover_ascii(ours.data["conf"]))
    ours = read_annotation(out / f"people.{main}.valence.annotation")
    loaded = FileHandler().load(tmp_path / "valence.annotation")
    np.testing.assert_array_equal(loaded.data["score"], discover_ascii(ours.data["score"]))
