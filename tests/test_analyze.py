"""`emonet analyze` end to end: generated videos, the real CLI in a subprocess, the stand-in
checkpoint, and every output checked against the model run directly on the aligned crops."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from discover_utils.data.handler.file_handler import FileHandler

from emonet_cli.analysis.analyze import analyze_file
from emonet_cli.constants import CLASS_NAMES
from emonet_cli.demo import make_sample
from emonet_cli.faces import BoxSource, read_boxes
from emonet_cli.faces.align import affine_from_box, apply_affine, crop_face, invert_affine
from emonet_cli.formats.annotations import read_annotation
from emonet_cli.formats.streams import read_stream, write_stream
from emonet_cli.media.video import MediaReader
from emonet_cli.models.emonet.checkpoint import build_model, load_state_dict
from emonet_cli.models.emonet.inference import Predictor, decode_landmarks
from emonet_cli.models.weights import sha256_file
from emonet_cli.outputs.results import QUALITY_COLUMNS, read_results_csv
from emonet_cli.outputs.writers import OutputOptions

FPS = 10.0


def model_args(weights: Path, *extra) -> list:
    return ["--weights", weights, "--device", "cpu", "--precision", "fp32", "--quiet", *extra]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """A 1.2 s clip at 10 fps whose face disappears between 0.4 s and 0.8 s."""
    return make_sample(
        tmp_path_factory.mktemp("clip"), width=320, height=240, fps=FPS, seconds=1.2, gap=(0.4, 0.8)
    )


@pytest.fixture(scope="module")
def analyzed(sample, standin_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    proc = run_cli(
        "analyze",
        sample.video,
        "--bbox",
        sample.boxes,
        "-o",
        out,
        "--batch-size",
        3,
        "--landmarks",
        "--embeddings",
        *model_args(standin_weights[8]),
    )
    return proc, out


@pytest.fixture(scope="module")
def direct(sample, standin_weights):
    """The model run directly (float32, one crop at a time) on the crops the published
    pipeline would make: box sample floor(t * sr), the published affine."""
    model = build_model(load_state_dict(standin_weights[8]), 8)
    reader = MediaReader(sample.video)
    boxes = read_boxes(sample.boxes, frame_size=(reader.info.width, reader.info.height))
    rows = []
    for frame in reader:
        sample_index = math.floor(frame.time * boxes.sr + 1e-6)
        has_face = sample_index < len(boxes) and boxes.conf[sample_index] >= 0.65
        if not has_face:
            rows.append(None)
            continue
        matrix = affine_from_box(boxes.boxes[sample_index])
        crop = torch.from_numpy(crop_face(frame.image, matrix)).permute(2, 0, 1)[None] / 255.0
        with torch.inference_mode():
            out = model(crop)
        crop_xy = decode_landmarks(out.heatmap)[0].numpy()
        rows.append(
            {
                "time": frame.time,
                "probabilities": torch.softmax(out.expression, dim=1)[0].numpy(),
                "valence": out.valence.item(),
                "arousal": out.arousal.item(),
                "embedding": out.embedding[0].numpy(),
                "landmarks": apply_affine(invert_affine(matrix), crop_xy),
            }
        )
    return rows


def test_stdout_is_one_line_per_input(analyzed, sample):
    proc, out = analyzed
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{sample.video} -> {out / 'astronaut.emonet.json'}")
    assert "12 frames, 8 with a face" in lines[0]


def test_csv_equals_the_model_on_the_aligned_crops(analyzed, direct, sample):
    _, out = analyzed
    header = (out / "astronaut.csv").read_text().splitlines()[0].split(",")
    names = CLASS_NAMES[8]
    assert header == [
        "frame",
        "time",
        "face",
        "face_conf",
        "expression",
        "expression_name",
        "expression_conf",
        "valence",
        "arousal",
        *(f"prob_{n.lower()}" for n in names),
        *QUALITY_COLUMNS,  # appended last: test_quality.py
    ]
    csv = read_results_csv(out / "astronaut.csv")
    assert len(csv["frame"]) == sample.frames == len(direct)
    np.testing.assert_array_equal(csv["frame"], np.arange(sample.frames))
    np.testing.assert_allclose(csv["time"], np.arange(sample.frames) / FPS, atol=1e-6)
    np.testing.assert_array_equal(csv["face"], sample.face_frames.astype(float))
    probabilities = np.stack([csv[f"prob_{n.lower()}"] for n in names], axis=1)
    for i, expected in enumerate(direct):
        if expected is None:
            assert csv["expression"][i] == -1 and csv["face_conf"][i] == 0
            assert csv["expression_name"][i] == ""
            assert np.isnan([csv["valence"][i], csv["arousal"][i], csv["expression_conf"][i]]).all()
            assert np.isnan(probabilities[i]).all()
            continue
        label = int(np.argmax(expected["probabilities"]))
        assert csv["expression"][i] == label and csv["expression_name"][i] == names[label]
        np.testing.assert_allclose(probabilities[i], expected["probabilities"], atol=1e-5)
        np.testing.assert_allclose(
            csv["expression_conf"][i], expected["probabilities"][label], atol=1e-5
        )
        np.testing.assert_allclose(csv["valence"][i], expected["valence"], atol=1e-5)
        np.testing.assert_allclose(csv["arousal"][i], expected["arousal"], atol=1e-5)
        np.testing.assert_allclose(csv["face_conf"][i], 0.98, atol=1e-6)


def test_landmark_and_embedding_streams(analyzed, direct):
    _, out = analyzed
    landmarks = read_stream(out / "astronaut.landmarks.stream")
    embedding = read_stream(out / "astronaut.embedding.stream")
    assert landmarks.data.shape == (12, 136) and embedding.data.shape == (12, 256)
    assert landmarks.sr == embedding.sr == FPS
    for i, expected in enumerate(direct):
        if expected is None:
            assert np.isnan(landmarks.data[i]).all() and np.isnan(embedding.data[i]).all()
            continue
        # Frame pixels (up to hundreds): the heatmap maxima mapped back through the inverse
        # affine, so relative to their size.
        np.testing.assert_allclose(
            landmarks.data[i].reshape(68, 2), expected["landmarks"], rtol=1e-5, atol=1e-3
        )
        np.testing.assert_allclose(embedding.data[i], expected["embedding"], atol=1e-4)


def test_annotations_have_frame_timings_and_garbage_rows(analyzed, sample, direct):
    _, out = analyzed
    expression = read_annotation(out / "astronaut.expression.annotation")
    assert expression.scheme.classes == list(CLASS_NAMES[8])
    rows = expression.data
    assert len(rows) == sample.frames
    np.testing.assert_allclose(rows["from"], np.arange(sample.frames) / FPS, atol=1e-9)
    np.testing.assert_allclose(rows["to"], np.arange(1, sample.frames + 1) / FPS, atol=1e-9)
    no_face = ~sample.face_frames
    assert (rows["id"][no_face] == -1).all() and (rows["conf"][no_face] == 0).all()
    labels = [int(np.argmax(d["probabilities"])) for d in direct if d is not None]
    np.testing.assert_array_equal(rows["id"][sample.face_frames], labels)
    for dimension in ("valence", "arousal"):
        annotation = read_annotation(out / f"astronaut.{dimension}.annotation")
        assert (annotation.scheme.sr, annotation.scheme.min, annotation.scheme.max) == (FPS, -1, 1)
        scores = annotation.data["score"]
        assert np.isnan(scores[no_face]).all() and (annotation.data["conf"][no_face] == 0).all()
        expected = [d[dimension] for d in direct if d is not None]
        np.testing.assert_allclose(scores[sample.face_frames], expected, atol=1e-5)


def test_annotations_load_in_discover(analyzed, sample):
    _, out = analyzed
    loaded = FileHandler().load(out / "astronaut.expression.annotation")
    ours = read_annotation(out / "astronaut.expression.annotation").data
    # DISCOVER keeps times as int32 milliseconds.
    np.testing.assert_array_equal(loaded.data["from"], (ours["from"] * 1000).astype(np.int32))
    np.testing.assert_array_equal(loaded.data["id"], ours["id"])
    valence = FileHandler().load(out / "astronaut.valence.annotation")
    assert valence.annotation_scheme.sample_rate == FPS
    ours = read_annotation(out / "astronaut.valence.annotation").data
    np.testing.assert_array_equal(valence.data["score"], ours["score"])
    np.testing.assert_array_equal(valence.data["conf"], ours["conf"])


def test_summary_json_records_provenance(analyzed, standin_weights):
    _, out = analyzed
    summary = json.loads((out / "astronaut.emonet.json").read_text())
    assert summary["weights"] == str(standin_weights[8])
    assert summary["weights_sha256"] == sha256_file(standin_weights[8])
    assert (summary["nclass"], summary["precision"], summary["device"]) == (8, "fp32", "cpu")
    assert (summary["frames"], summary["frames_with_face"]) == (12, 8)
    assert sum(summary["expression_histogram"].values()) == 8
    csv = read_results_csv(out / "astronaut.csv")
    assert summary["mean_valence"] == pytest.approx(np.nanmean(csv["valence"]), abs=1e-6)
    assert summary["version"] and summary["seconds"] > 0


def test_smoothing_and_merge_do_not_depend_on_batch_size(sample, standin_weights, tmp_path):
    csvs = []
    for batch_size in (1, 7):
        out = tmp_path / f"b{batch_size}"
        run_cli(
            "analyze",
            sample.video,
            "--bbox",
            sample.boxes,
            "-o",
            out,
            "--smooth",
            "--merge",
            "--batch-size",
            batch_size,
            *model_args(standin_weights[5]),
        )
        csvs.append(read_results_csv(out / "astronaut.csv"))
        merged = read_annotation(out / "astronaut.expression.annotation").data
        # Runs of equal labels are joined: fewer segments, and they tile the clip.
        assert len(merged) < sample.frames
        np.testing.assert_allclose(merged["from"][1:], merged["to"][:-1])
    for name in csvs[0]:
        if name == "expression_name":
            np.testing.assert_array_equal(csvs[0][name], csvs[1][name])
        else:
            np.testing.assert_allclose(csvs[0][name], csvs[1][name], atol=1e-6, equal_nan=True)


def test_stream_at_another_rate_and_shorter_than_the_video(standin_weights, tmp_path):
    # Boxes at 5 Hz for the first 0.6 s of a 1 s clip at 10 fps.
    clip = make_sample(tmp_path, width=160, height=120, fps=FPS, seconds=1.0, gap=None, box_rate=5)
    stream = read_stream(clip.boxes)
    write_stream(clip.boxes, stream.data[:3], sr=5)
    proc = run_cli(
        "analyze",
        clip.video,
        "--bbox",
        clip.boxes,
        "-o",
        tmp_path / "out",
        *model_args(standin_weights[8])[:-1],
    )
    assert proc.stderr.count("warning") == 1 and "lasts 0.600 s" in proc.stderr
    csv = read_results_csv(tmp_path / "out" / "astronaut.csv")
    np.testing.assert_array_equal(csv["face"], [1, 1, 1, 1, 1, 1, 0, 0, 0, 0])


def test_images_with_full_frame_and_with_a_box_list(standin_weights, tmp_path):
    import cv2
    import skimage.data

    image = tmp_path / "portrait.png"
    cv2.imwrite(str(image), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    box_list = tmp_path / "boxes.txt"
    box_list.write_text("portrait.png 170 58 272 178\n")
    run_cli(
        "analyze",
        image,
        "--bbox",
        box_list,
        "-o",
        tmp_path / "boxed",
        *model_args(standin_weights[8]),
    )
    run_cli(
        "analyze", image, "--full-frame", "-o", tmp_path / "full", *model_args(standin_weights[8])
    )
    boxed = read_results_csv(tmp_path / "boxed" / "portrait.csv")
    full = read_results_csv(tmp_path / "full" / "portrait.csv")
    assert len(boxed["frame"]) == len(full["frame"]) == 1
    assert boxed["face"][0] == full["face"][0] == 1
    assert boxed["valence"][0] != full["valence"][0]  # a different crop
    assert not list((tmp_path / "boxed").glob("*.annotation"))  # annotations are for videos


def make_folder(folder: Path, count: int) -> list:
    clips = []
    for i in range(count):
        clip = make_sample(
            folder / "videos",
            name=f"clip{i}",
            width=160,
            height=120,
            fps=FPS,
            seconds=0.4,
            gap=None,
        )
        (folder / "boxes").mkdir(exist_ok=True)
        shutil.move(clip.boxes, folder / "boxes" / clip.boxes.name)
        shutil.move(str(clip.boxes) + "~", folder / "boxes" / (clip.boxes.name + "~"))
        clips.append(clip)
    return clips


def test_folder_with_a_corrupt_video_fails_only_that_input(standin_weights, tmp_path):
    make_folder(tmp_path, 2)
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(500))
    proc = run_cli(
        "analyze",
        tmp_path / "videos",
        "--bbox-dir",
        tmp_path / "boxes",
        "--json",
        "-o",
        tmp_path / "out",
        *model_args(standin_weights[8]),
        check=False,
    )
    assert proc.returncode == 1
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(Path(r["input"]).name, r["status"]) for r in reports] == [
        ("broken.mp4", "error"),
        ("clip0.mp4", "ok"),
        ("clip1.mp4", "ok"),
    ]
    assert "broken.mp4" in reports[0]["error"]
    assert len(proc.stderr.strip().splitlines()) == 1 and "broken.mp4" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.emonet.json")) == [
        "clip0.emonet.json",
        "clip1.emonet.json",
    ]


def peak_rss_mb(args: list, tmp_path: Path) -> float:
    """Peak resident memory of a CLI run, measured by the child itself."""
    code = (
        "import resource, sys; from emonet_cli.cli import cli\n"
        "try:\n    cli.main(sys.argv[1:], prog_name='emonet')\nexcept SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "EMONET_CACHE": str(tmp_path)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return float(proc.stdout.splitlines()[-1])


def resident_mb() -> float:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_memory_does_not_grow_with_video_length(standin_weights, tmp_path):
    """Peak memory of a 40 s video is that of a 4 s one, and memory stays flat while the long
    one streams. The face shows for the first 0.4 s only, so the model runs on the same frames
    in both; the rest is decoding, box lookup and writing, all of which must stream."""
    clips = {
        seconds: make_sample(
            tmp_path,
            name=f"v{seconds}",
            width=320,
            height=240,
            fps=25,
            seconds=seconds,
            gap=(0.4, seconds),
        )
        for seconds in (4, 40)
    }
    peak = {
        seconds: peak_rss_mb(
            [
                "analyze",
                clip.video,
                "--bbox",
                clip.boxes,
                "-o",
                tmp_path / "out",
                "--landmarks",
                "--embeddings",
                *model_args(standin_weights[8]),
            ],
            tmp_path,
        )
        for seconds, clip in clips.items()
    }
    # Peak RSS varies by a few tens of MB between identical runs (allocator, threads).
    assert peak[40] - peak[4] < 50, peak

    predictor = Predictor(build_model(load_state_dict(standin_weights[8]), 8), "cpu", "fp32")
    samples: list[tuple[int, float]] = []
    done = 0

    def record(frames: int) -> None:
        nonlocal done
        done += frames
        samples.append((done, resident_mb()))

    options = OutputOptions(directory=tmp_path / "inproc", landmarks=True, embeddings=True)
    analyze_file(
        clips[40].video, predictor, BoxSource(clips[40].boxes), options=options, on_batch=record
    )
    assert done == 1000 and len(samples) >= 4  # batches stay small even without faces
    settled = [rss for frames, rss in samples if frames >= 256]
    assert settled[-1] - settled[0] < 10, samples


def test_usage_and_input_errors_are_one_line(standin_weights, sample, tmp_path):
    proc = run_cli("analyze", sample.video, "--bbox", sample.boxes, "--full-frame", check=False)
    assert proc.returncode == 2
    proc = run_cli(
        "analyze",
        tmp_path / "missing.mp4",
        "--full-frame",
        *model_args(standin_weights[8]),
        check=False,
    )
    assert proc.returncode == 1 and "missing.mp4: no such file" in proc.stderr
    # Without box options the stream beside the video would be used: an empty --bbox-dir has none.
    proc = run_cli(
        "analyze", sample.video, "--bbox-dir", tmp_path, *model_args(standin_weights[8]),
        "-o", tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "no face boxes" in proc.stderr
    proc = run_cli(
        "analyze",
        sample.video,
        "--full-frame",
        "--nclass",
        "5",
        *model_args(standin_weights[8]),
        check=False,
    )
    assert proc.returncode == 1 and "8" in proc.stderr and "5" in proc.stderr
    for proc_err in (proc.stderr,):
        assert len(proc_err.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is there")
def test_an_unavailable_device_is_one_line_not_a_cpu_run(sample, tmp_path):
    proc = run_cli("analyze", sample.video, "--device", "cuda", "-o", tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "emonet: error: device 'cuda' requested but CUDA is not available"
    ]
    assert not list(tmp_path.iterdir())


def test_offline_without_weights_says_what_to_put_where(sample, tmp_path):
    proc = run_cli(
        "analyze",
        sample.video,
        "--full-frame",
        "--offline",
        "-o",
        tmp_path,
        cache=tmp_path / "cache",
        check=False,
    )
    assert proc.returncode == 1
    assert "emonet_8.pth" in proc.stderr and str(tmp_path / "cache") in proc.stderr
    assert "52918cffba56f31886e6959f6837266a5f7ef5c0a552baf4c6dabe1e8fa9bc97" in proc.stderr
    assert not list(tmp_path.glob("*.csv"))


def test_malicious_weights_are_refused_without_running(sample, tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"conv1.weight": Payload()}))
    proc = run_cli(
        "analyze", sample.video, "--full-frame", "--weights", evil, "-o", tmp_path, check=False
    )
    assert proc.returncode == 1 and "evil.pth" in proc.stderr
    assert not marker.exists()


def test_recursive_folders_mirror_their_tree_in_the_output(standin_weights, tmp_path):
    """Two clips called clip.mp4 in different sub-folders keep apart in -o, and each finds its
    box stream in the same sub-folder of --bbox-dir."""
    for sub in ("day1", "day2"):
        clip = make_sample(
            tmp_path / "videos" / sub,
            name="clip",
            width=160,
            height=120,
            fps=FPS,
            seconds=0.3,
            gap=(0.0, 0.3) if sub == "day2" else None,
        )
        (tmp_path / "boxes" / sub).mkdir(parents=True)
        for name in (clip.boxes.name, clip.boxes.name + "~"):
            shutil.move(clip.boxes.parent / name, tmp_path / "boxes" / sub / name)
    run_cli(
        "analyze",
        tmp_path / "videos",
        "-r",
        "--bbox-dir",
        tmp_path / "boxes",
        "-o",
        tmp_path / "out",
        *model_args(standin_weights[8]),
    )
    faces = {
        sub: read_results_csv(tmp_path / "out" / sub / "clip.csv")["face"].sum()
        for sub in ("day1", "day2")
    }
    assert faces == {"day1": 3, "day2": 0}
