"""Decoding: RGB frames one at a time, container timestamps (variable frame rate survives),
rotation metadata honoured, unreadable files refused with one clear line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from emonet_cli.errors import InputError
from emonet_cli.media.images import read_image
from emonet_cli.media.video import MediaReader, find_media

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*args) -> None:
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", *map(str, args)], check=True)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def gray_frames(count: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    return [np.full((height, width, 3), 30 * i, dtype=np.uint8) for i in range(count)]


def test_frames_are_rgb_with_timestamps(tmp_path):
    red = np.zeros((48, 64, 3), dtype=np.uint8)
    red[..., 0] = 220
    path = write_video(tmp_path / "red.mp4", [red] * 5, fps=20)
    reader = MediaReader(path)
    assert (reader.info.width, reader.info.height, reader.info.fps) == (64, 48, 20)
    frames = list(reader)
    assert [f.index for f in frames] == list(range(5))
    np.testing.assert_allclose([f.time for f in frames], np.arange(5) / 20)
    red_channel, green, blue = frames[2].image[20, 30]
    assert red_channel > 200 and green < 30 and blue < 30


def test_variable_frame_rate_keeps_container_timestamps(tmp_path):
    durations = [0.04, 0.04, 0.2, 0.04, 0.12, 0.04]  # multiples of the 25 Hz time base
    lines = []
    for i, duration in enumerate(durations):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), gray_frames(6)[i])
        lines += [f"file 'f{i}.png'", f"duration {duration}"]
    lines.append(f"file 'f{len(durations) - 1}.png'")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    video = tmp_path / "vfr.mp4"
    ffmpeg(
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        tmp_path / "list.txt",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        video,
    )
    times = [frame.time for frame in MediaReader(video)]
    np.testing.assert_allclose(times[:6], np.concatenate([[0], np.cumsum(durations[:-1])]))


def test_rotation_metadata_is_applied(tmp_path):
    frame = np.zeros((48, 64, 3), dtype=np.uint8)
    frame[:, :8] = 255  # a white band on the left edge
    plain = write_video(tmp_path / "plain.mp4", [frame] * 3)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", plain, "-c", "copy", rotated)
    reader = MediaReader(rotated)
    assert (reader.info.width, reader.info.height) == (48, 64)
    image = next(iter(reader)).image
    assert image.shape == (64, 48, 3)
    # Rotated 90 degrees counter-clockwise, the left band becomes the bottom band.
    assert image[-4:, :, :].mean() > 200 and image[:8].mean() < 50


@pytest.mark.parametrize(
    "content, message",
    [(b"", "not a readable video"), (b"\x00\x00\x00\x18ftypmp42garbage" * 20, "video")],
)
def test_unreadable_videos_are_refused(tmp_path, content, message):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(InputError, match=f"broken.mp4: .*{message}"):
        MediaReader(path)


def test_missing_and_unreadable_images(tmp_path):
    with pytest.raises(InputError, match="nothing.png: no such file"):
        MediaReader(tmp_path / "nothing.png")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="bad.jpg: not a readable image"):
        read_image(tmp_path / "bad.jpg")


def test_fifos_devices_and_folders_are_not_regular_files(tmp_path):
    fifo = tmp_path / "stream.png"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    for path in (fifo, Path("/dev/null"), tmp_path):
        with pytest.raises(InputError, match=f"{path}: not a regular file"):
            MediaReader(path)
    with pytest.raises(InputError, match="stream.png: not a regular file"):
        read_image(fifo)


def test_an_image_is_one_frame_at_time_zero(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    reader = MediaReader(tmp_path / "face.png")
    frames = list(reader)
    assert reader.info.is_image and len(frames) == 1 and frames[0].time == 0
    np.testing.assert_array_equal(frames[0].image, image)


def test_find_media_expands_folders(tmp_path):
    for name in ("b.mp4", "a.jpg", "notes.txt", "sub/c.mov"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [(p.name, str(sub)) for p, sub in find_media([tmp_path])] == [
        ("a.jpg", "."),
        ("b.mp4", "."),
    ]
    found = find_media([tmp_path], recursive=True)
    assert [(p.name, str(sub)) for p, sub in found] == [
        ("a.jpg", "."),
        ("b.mp4", "."),
        ("c.mov", "sub"),
    ]
    assert find_media([tmp_path / "notes.txt"]) == [(tmp_path / "notes.txt", Path("."))]


def test_find_media_lists_a_file_reached_twice_once(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    clip = tmp_path / "sub" / "x.mp4"
    clip.write_bytes(b"x")
    (tmp_path / "link.mp4").symlink_to(clip)
    os.link(clip, tmp_path / "hard.mp4")
    monkeypatch.chdir(tmp_path)
    given = [Path("sub/x.mp4"), Path("./sub/x.mp4"), tmp_path / "link.mp4", Path("sub")]
    assert find_media([*given, Path("hard.mp4")]) == [(Path("sub/x.mp4"), Path("."))]
    other = tmp_path / "sub" / "y.mp4"
    other.write_bytes(b"y")
    assert find_media([Path("sub"), Path("sub/y.mp4")]) == [
        (Path("sub/x.mp4"), Path(".")),
        (Path("sub/y.mp4"), Path(".")),
    ]
