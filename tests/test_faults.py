"""Fault injection: what unattended runs meet on shared storage. Concurrent runs into one
folder, kills mid-run, read-only and full disks, broken box files and weights, odd inputs and
noisy decoders. Each run must end as documented: the exit status, one `emonet: error:` line per
failing input, no traceback, no partial or temporary file, earlier results intact.

Clips are tiny (64x48) and show a face on one frame at most: the model is the slow part."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from cli_helpers import cli_command, cli_env, run_cli

from emonet_cli.demo import make_sample
from emonet_cli.errors import FormatError, WeightsError
from emonet_cli.faces import read_boxes
from emonet_cli.formats import fileio
from emonet_cli.formats.fileio import (
    PendingFile,
    host_tag,
    part_files_listed_once,
    remove_partial_files,
    temporary_sibling,
)
from emonet_cli.formats.streams import read_stream, write_stream
from emonet_cli.media import images
from emonet_cli.models.emonet.checkpoint import load_model
from emonet_cli.outputs.results import read_results

FPS = 10.0


def model_args(weights: Path, *extra) -> list:
    return ["--weights", weights, "--device", "cpu", "--precision", "fp32", "-q", *extra]


def tiny_clip(folder: Path, name: str, frames: int = 4, face_frames: int = 0) -> Path:
    """`folder/videos/NAME.mp4` with its box stream in `folder/boxes/`; the face shows (with a
    confident box) on the first `face_frames` frames only."""
    sample = make_sample(
        folder / "boxes",
        name=name,
        width=64,
        height=48,
        fps=FPS,
        seconds=frames / FPS,
        gap=(face_frames / FPS, frames / FPS),
    )
    (folder / "videos").mkdir(exist_ok=True)
    return Path(shutil.move(sample.video, folder / "videos" / sample.video.name))


def error_lines(stderr: str) -> list[str]:
    lines = stderr.strip().splitlines()
    assert all(line.startswith("emonet: error: ") for line in lines), stderr
    return lines


def part_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.part*"))


def output_files(folder: Path) -> dict[str, bytes]:
    """Every file in `folder`, hidden ones included, the run-specific fields of the summaries
    blanked."""
    files = {}
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        if path.name.endswith(".emonet.json"):
            summary = json.loads(data)
            summary["seconds"] = None
            summary["outputs"] = [Path(p).name for p in summary["outputs"]]
            data = json.dumps(summary, sort_keys=True).encode()
        files[path.name] = data
    return files


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str):
    """A tmpfs of `size` at `folder` (only root may mount one): unmounted on the way out."""
    folder.mkdir(parents=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    mounted = subprocess.run(command, capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"mount is not permitted here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextlib.contextmanager
def freezable_folder(folder: Path):
    """A folder and the function that makes it read-only: a permission for ordinary users,
    a read-only remount of a tmpfs for root (whom permissions do not stop)."""
    if os.geteuid() != 0:
        folder.mkdir()
        try:
            yield folder, lambda: folder.chmod(0o555)
        finally:
            folder.chmod(0o755)
        return
    with mounted_tmpfs(folder, "4m"):

        def freeze() -> None:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)

        yield folder, freeze


# --- part files: each belongs to its writer ---------------------------------------------------


@pytest.mark.parametrize("listed_once", [False, True], ids=["glob", "listed once"])
def test_the_sweep_removes_only_part_files_of_writers_that_are_gone(tmp_path, listed_once):
    target = tmp_path / "clip.csv"
    finished = subprocess.Popen(["true"])
    finished.wait()
    alive = subprocess.Popen(["sleep", "60"])
    try:
        names = {
            "own": temporary_sibling(target).name,
            "live": f".clip.csv.{host_tag()}.{alive.pid}.abcd1234.part",
            "dead": f".clip.csv.{host_tag()}.{finished.pid}.abcd1234.part",
            "other host": f".clip.csv.another-node.{finished.pid}.abcd1234.part",
            "old format": ".clip.csv.abcd1234.part",
            "another file": f".clip.csv~.{host_tag()}.{finished.pid}.abcd1234.part",
        }
        for name in names.values():
            (tmp_path / name).touch()
        with part_files_listed_once() if listed_once else contextlib.nullcontext():
            remove_partial_files(target)
        left = {what for what, name in names.items() if (tmp_path / name).exists()}
    finally:
        alive.kill()
        alive.wait()
    assert left == {"own", "live", "other host", "another file"}


def test_a_folder_is_read_once_for_every_file_written_into_it(tmp_path, monkeypatch):
    """Analysing one input lists its output folder once (not once per file: quadratic in the
    people of a video and the inputs of a corpus folder), and still sweeps every stale part
    file that was there; one appearing after the listing waits for the next sweep."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = [tmp_path / f".f{k}.csv.{host_tag()}.{gone.pid}.abcd1234.part" for k in (3, 40)]
    for path in stale:
        path.touch()
    listings = []
    listdir = os.listdir
    monkeypatch.setattr(fileio.os, "listdir", lambda path: listings.append(path) or listdir(path))
    later = tmp_path / f".f7.csv.{host_tag()}.{gone.pid}.efgh5678.part"
    with part_files_listed_once():
        for k in range(50):
            if k == 5:
                later.touch()  # after the listing
            PendingFile(tmp_path / f"f{k}.csv", binary=False).commit()
    assert listings == [tmp_path]
    assert not any(path.exists() for path in stale) and later.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [later.name, *(f"f{k}.csv" for k in range(50))]
    )
    PendingFile(tmp_path / "f7.csv", binary=False).commit()  # outside: read as before
    assert not later.exists()


def test_two_runs_into_one_folder_both_finish(standin_weights, tmp_path):
    names = ["clip0", "clip1"]
    for name in names:
        tiny_clip(tmp_path, name, face_frames=1)
    args = [
        "analyze",
        tmp_path / "videos",
        "--bbox-dir",
        tmp_path / "boxes",
        "-o",
        tmp_path / "out",
    ]
    command = cli_command(*args, "--skip-existing", *model_args(standin_weights[8]))
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
        for _ in range(2)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0 and not stderr, stderr.decode()
    for name in names:
        assert len(read_results(tmp_path / "out" / f"{name}.csv")) == 4
        assert json.loads((tmp_path / "out" / f"{name}.emonet.json").read_text())["frames"] == 4
    assert not part_files(tmp_path)


# --- killed mid-run, then resumed -------------------------------------------------------------


@pytest.fixture(scope="module")
def folder_run(standin_weights, tmp_path_factory):
    """Three clips and the outputs of one uninterrupted run over them. The model runs on the
    second only, which keeps the run busy when it is killed."""
    folder = tmp_path_factory.mktemp("killed")
    for i in range(3):
        tiny_clip(folder, f"clip{i}", face_frames=int(i == 1))
    args = ["analyze", folder / "videos", "--bbox-dir", folder / "boxes"]
    args += model_args(standin_weights[8])
    run_cli(*args, "-o", folder / "whole")
    return folder, args


@pytest.mark.parametrize("kill_signal", [signal.SIGTERM, signal.SIGKILL], ids=["TERM", "KILL"])
def test_killed_run_resumes_to_the_same_files(folder_run, tmp_path, kill_signal):
    folder, args = folder_run
    out = tmp_path / "resumed"
    run = subprocess.Popen(
        cli_command(*args, "-o", out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()
    )
    assert b"clip0.mp4" in run.stdout.readline()  # the first input is done, the second under way
    run.send_signal(kill_signal)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode != 0 and b"Traceback" not in stderr
    interrupted = output_files(out)
    assert "clip2.emonet.json" not in interrupted
    if kill_signal == signal.SIGTERM:  # a polite kill removes its temporary files
        assert not part_files(out)

    proc = run_cli(*args, "-o", out, "--skip-existing")
    assert proc.stdout.splitlines()[0].startswith("skipped")
    assert output_files(out) == output_files(folder / "whole")


# --- output errors: one line, the others go on -------------------------------------------------


def test_read_only_output_folder_fails_that_input_alone(standin_weights, tmp_path):
    with freezable_folder(tmp_path / "frozen") as (frozen, freeze):
        clip0 = tiny_clip(frozen, "clip0")
        clip1 = tiny_clip(tmp_path, "clip1")
        for box in (frozen / "boxes").iterdir():
            shutil.copy(box, tmp_path / "boxes")
        args = ["analyze", "--bbox-dir", tmp_path / "boxes", *model_args(standin_weights[8])]
        run_cli(*args, clip0)  # earlier results, beside the input
        earlier = output_files(clip0.parent)
        freeze()

        proc = run_cli(*args, clip0, clip1, check=False)

        assert proc.returncode == 1
        (line,) = error_lines(proc.stderr)  # the input, the cause, the file it could not write
        assert line.startswith(f"emonet: error: {clip0}: ")
        assert line.endswith(f": {clip0.with_suffix('.csv')}")
        assert "Read-only file system" in line or "Permission denied" in line
        assert output_files(clip0.parent) == earlier
        assert len(read_results(clip1.with_suffix(".csv"))) == 4
        assert not part_files(tmp_path)


def test_full_disk_fails_that_input_alone(standin_weights, tmp_path):
    tiny_clip(tmp_path, "a_first")
    tiny_clip(tmp_path, "b_long", frames=300)  # ~470 KB of landmarks and embeddings
    tiny_clip(tmp_path, "c_last")
    with mounted_tmpfs(tmp_path / "out", "256k") as out:
        proc = run_cli(
            "analyze",
            tmp_path / "videos",
            "--bbox-dir",
            tmp_path / "boxes",
            "-o",
            out,
            "--landmarks",
            "--embeddings",
            *model_args(standin_weights[8]),
            check=False,
        )
        assert proc.returncode == 1
        (line,) = error_lines(proc.stderr)
        assert "b_long.mp4" in line and "No space left on device" in line
        assert not part_files(out)
        assert [p.name for p in out.glob("b_long*")] == ["b_long.failed.json"]  # its record
        for name in ("a_first", "c_last"):
            assert len(read_results(out / f"{name}.csv")) == 4
            assert read_stream(out / f"{name}.embedding.stream").data.shape == (4, 256)


# --- broken weights, odd inputs ---------------------------------------------------------------


def test_nan_outputs_and_odd_inputs_fail_alone(standin_weights, tmp_path):
    weights = tmp_path / "diverged.pth"
    state = torch.load(standin_weights[8], weights_only=True)
    # Finite weights whose sums overflow: +inf and -inf meet in the head, whose outputs
    # (expression, valence, arousal) are NaN while every weight is a number.
    head = state["module.emo_fc_2.3.weight"]
    head[:, 0::2], head[:, 1::2] = 3e38, -3e38
    torch.save(state, weights)
    tiny_clip(tmp_path, "face", face_frames=1)
    tiny_clip(tmp_path, "no_face")  # the model never runs: nothing to go wrong
    os.mkfifo(tmp_path / "videos" / "fifo.mp4")  # reading it would wait forever
    boxes = tmp_path / "boxes"
    for stem in ("fifo", "null"):
        shutil.copy(boxes / "no_face.stream", boxes / f"{stem}.stream")
        shutil.copy(boxes / "no_face.stream~", boxes / f"{stem}.stream~")
    inputs = [tmp_path / "videos" / name for name in ("face.mp4", "no_face.mp4", "fifo.mp4")]

    proc = run_cli(
        "analyze",
        *inputs,
        "/dev/null",
        "--bbox-dir",
        boxes,
        "-o",
        tmp_path / "out",
        *model_args(weights),
        check=False,
    )

    assert proc.returncode == 1
    nan, fifo, null = error_lines(proc.stderr)
    assert "face.mp4: the model's outputs are not finite (NaN) at frame 0" in nan
    assert "--precision fp32" in nan
    assert fifo.endswith("fifo.mp4: not a regular file") and null.endswith(
        "/dev/null: not a regular file"
    )
    assert all(name.startswith("no_face.") for name in output_files(tmp_path / "out"))
    assert len(read_results(tmp_path / "out" / "no_face.csv")) == 4


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_weights_holding_nan_or_inf_are_refused_naming_the_file(value, standin_weights, tmp_path):
    weights = tmp_path / "damaged.pth"
    state = torch.load(standin_weights[8], weights_only=True)
    state["module.emo_fc_2.3.weight"][0, 0] = value
    torch.save(state, weights)
    with pytest.raises(
        WeightsError, match=r"damaged\.pth: damaged weights: emo_fc_2\.3\.weight holds"
    ):
        load_model(weights, offline=True, progress=False)
    tiny_clip(tmp_path, "face", face_frames=1)
    proc = run_cli(
        "analyze", tmp_path / "videos" / "face.mp4", "--bbox-dir", tmp_path / "boxes",
        "-o", tmp_path / "out", *model_args(weights), check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert error_lines(proc.stderr) == [
        f"emonet: error: {weights}: damaged weights: emo_fc_2.3.weight holds NaN or infinite values"
    ]
    assert not (tmp_path / "out").exists() or output_files(tmp_path / "out") == {}


# --- box files ---------------------------------------------------------------------------------


def png_with_a_bad_colour_profile(path: Path, width: int = 64, height: int = 48) -> Path:
    """A valid grey PNG whose iCCP chunk holds no real profile: libpng warns on decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    pixels = b"".join(b"\0" + bytes([120] * 3 * width) for _ in range(height))
    profile = b"bad\0\0" + zlib.compress(b"not a profile")
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"iCCP", profile)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )
    return path


def test_empty_and_inverted_boxes_mean_no_face_and_decoders_stay_quiet(standin_weights, tmp_path):
    clip = tiny_clip(tmp_path, "clip", face_frames=1)
    stream = tmp_path / "boxes" / "clip.stream"
    rows = read_stream(stream).data
    ymin, xmin, ymax, xmax, _ = rows[0]
    rows[1] = [ymin, xmin, ymax, xmin, 0.98]  # zero width, confident
    rows[2] = [ymax, xmax, ymin, xmin, 0.98]  # inverted, confident
    rows[3] = [ymin, xmin, ymin, xmin, 0.0]  # empty, but no detection: no warning
    write_stream(stream, rows, sr=FPS)
    image = png_with_a_bad_colour_profile(tmp_path / "videos" / "portrait.png")
    (tmp_path / "boxes" / "portrait.csv").write_text("frame,x1,y1,x2,y2,conf\n0,8,8,40,40,0\n")
    out = tmp_path / "out"

    proc = run_cli(
        "analyze", clip, image, "--bbox-dir", tmp_path / "boxes", "-o", out,
        *model_args(standin_weights[8]),
    )  # fmt: skip

    assert proc.stderr == ""  # -q: no libpng, OpenCV or FFmpeg line, no warning
    np.testing.assert_array_equal(read_results(out / "clip.csv").face, [True, False, False, False])
    (warning,) = json.loads((out / "clip.emonet.json").read_text())["warnings"]
    assert "2 of 4 boxes in clip.stream are empty or inverted" in warning
    assert "x, y, width, height" in warning
    assert len(read_results(out / "portrait.csv")) == 1


def test_libpng_lines_are_dropped_and_other_stderr_kept(tmp_path, capfd, monkeypatch):
    """While libpng's lines are kept off stderr, what another thread writes there meanwhile
    (simulated inside the decode) still comes out."""
    image = png_with_a_bad_colour_profile(tmp_path / "noisy.png")
    monkeypatch.setattr(images, "_native_messages_muted", True)
    decode = cv2.imdecode

    def decode_beside_another_writer(*args):
        os.write(2, b"emonet: warning: written meanwhile\n")
        return decode(*args)

    monkeypatch.setattr(images.cv2, "imdecode", decode_beside_another_writer)
    assert images.read_image(image).shape == (48, 64, 3)
    assert capfd.readouterr().err == "emonet: warning: written meanwhile\n"


def test_huge_frame_numbers_allocate_nothing_and_absurd_ones_are_refused(tmp_path):
    path = tmp_path / "boxes.csv"
    path.write_text("frame,x1,y1,x2,y2\n0,1,2,30,40\n999999999,1,2,30,40\n")
    tracemalloc.start()
    try:
        boxes = read_boxes(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20 and len(boxes) == 2 and boxes.row(999_999_999) == 1
    path.write_text("frame,x1,y1,x2,y2\n1712345678901,1,2,30,40\n")  # epoch milliseconds
    with pytest.raises(FormatError, match="line 2: frame '1712345678901' is not a frame index"):
        read_boxes(path)


@pytest.mark.parametrize("ftype", ["BINARY", "ASCII"])
def test_stream_headers_claiming_more_samples_than_their_data_are_refused(tmp_path, ftype):
    stream = write_stream(tmp_path / "b", np.zeros((2, 5), dtype=np.float32), FPS, ftype=ftype)
    header = stream.read_text().replace('num="2"', f'num="{10**12}"')
    stream.write_text(header)
    tracemalloc.start()
    try:
        with pytest.raises(FormatError, match="b.stream~"):
            read_boxes(stream, frame_size=(64, 48))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
