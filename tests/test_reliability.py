"""What a run guarantees beyond a clean error (docs/reliability.md): --skip-existing compares
what the summary records with what is asked, an input given twice is analysed once, no writer
leaves part files of killed runs for good, a re-run leaves a folder of this run's results only,
and the open files stay bounded whatever the number of people."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import run_cli

from emonet_cli.demo import make_sample
from emonet_cli.formats.fileio import host_tag

MODEL = ("--precision", "fp32", "--device", "cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    return make_sample(folder, width=96, height=72, fps=10.0, seconds=0.4, gap=None)


def statuses(proc) -> list[str]:
    return [json.loads(line)["status"] for line in proc.stdout.splitlines()]


# --- --skip-existing ---------------------------------------------------------------------------


def test_skip_existing_skips_only_results_of_the_same_model_weights_and_options(
    clip, standin_weights, tmp_path
):
    from emonet_cli.analysis.pipeline import AnalysisSettings
    from emonet_cli.faces import BoxOptions
    from emonet_cli.outputs.writers import OutputOptions
    from emonet_cli.run.one_input import LoadedModel, ModelOptions, already_done

    video = tmp_path / "clip.mp4"
    shutil.copy(clip.video, video)
    args = ("analyze", video, "--bbox", clip.boxes, "--weights", standin_weights[8], *MODEL)
    run_cli(*args)
    assert statuses(run_cli(*args, "--json", "--skip-existing")) == ["skipped"]

    source = BoxOptions(bbox=clip.boxes).source_for(video, Path("."))
    copy = tmp_path / "retrained.pth"  # the same classes, another file
    copy.write_bytes(standin_weights[8].read_bytes() + b"\0")

    def done(weights=standin_weights[8], **settings) -> bool:
        model = LoadedModel(ModelOptions(weights=weights, device="cpu", precision="fp32"))
        options = OutputOptions(family="emonet")
        return already_done(video, source, options, AnalysisSettings(**settings), model)

    assert done()
    assert not done(standin_weights[5])  # another class count
    assert not done(copy)  # another SHA-256
    assert not done(min_face_conf=0.9)
    assert not done(smooth=True)


# --- an input given twice ----------------------------------------------------------------------


def test_an_input_given_twice_is_analysed_once(clip, standin_weights, tmp_path):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(clip.video, folder / "clip.mp4")
    (folder / "link.mp4").symlink_to(folder / "clip.mp4")
    boxes = tmp_path / "boxes"
    boxes.mkdir()
    for name in ("clip", "link"):
        shutil.copy(clip.boxes, boxes / f"{name}.stream")
        shutil.copy(f"{clip.boxes}~", boxes / f"{name}.stream~")
    out = tmp_path / "out"
    proc = run_cli(
        "analyze", folder / "clip.mp4", f"{folder}/./clip.mp4", folder, "--bbox-dir", boxes,
        "--weights", standin_weights[8], *MODEL, "-o", out, "--json", cwd=tmp_path,
    )  # fmt: skip
    assert statuses(proc) == ["ok"]
    assert json.loads(proc.stdout)["input"] == str(folder / "clip.mp4")
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".emonet.json")) == [
        "clip.emonet.json"
    ]


# --- part files of killed writers --------------------------------------------------------------


def dead_and_live_part_files(folder: Path, name: str) -> tuple[Path, Path, subprocess.Popen]:
    """A part file of `folder/name` whose writer is gone, one of a live writer, and that
    writer (to be killed by the caller)."""
    finished = subprocess.Popen(["true"])
    finished.wait()
    alive = subprocess.Popen(["sleep", "60"])
    folder.mkdir(parents=True, exist_ok=True)
    dead = folder / f".{name}.{host_tag()}.{finished.pid}.abcd1234.part"
    live = folder / f".{name}.{host_tag()}.{alive.pid}.abcd1234.part"
    dead.write_bytes(b"half a file")
    live.write_bytes(b"being written")
    return dead, live, alive


def test_weights_convert_sweeps_part_files_of_killed_conversions(tmp_path):
    from standin import write_published

    from emonet_cli.models.emotic.lookup import CONVERTED_FILE

    published = tmp_path / "published"
    write_published(published)
    dest = tmp_path / "dest"
    dead, live, alive = dead_and_live_part_files(dest, CONVERTED_FILE)
    try:
        run_cli("weights", "convert", "emotic", published, "--dest", dest)
        assert not dead.exists() and live.exists()
    finally:
        alive.kill()
        alive.wait()
    assert (dest / CONVERTED_FILE).is_file()


def test_weights_fetch_sweeps_part_files_of_killed_downloads(tmp_path):
    import hashlib

    from local_server import serving

    from emonet_cli.models.weights import fetch_weights

    payload = b"stand-in weights\n" * 1024
    dest = tmp_path / "dest"
    dead, live, alive = dead_and_live_part_files(dest, "emonet_8.pth")
    try:
        with serving() as server:
            server.routes["/w8.pth"] = payload
            url = server.url("/w8.pth")
            sha256 = hashlib.sha256(payload).hexdigest()
            fetch_weights(8, dest_dir=dest, url=url, sha256=sha256, progress=False)
        assert not dead.exists() and live.exists()
    finally:
        alive.kill()
        alive.wait()
    assert (dest / "emonet_8.pth").read_bytes() == payload


# --- a re-run leaves a folder of this run's results only ---------------------------------------


def people_csv(path: Path, people: int, frames: int = 4) -> Path:
    rows = ["frame,face,x1,y1,x2,y2,conf"]
    for frame in range(frames):
        rows += [f"{frame},{k},{8 + 20 * k},10,{28 + 20 * k},40,0.9" for k in range(1, people + 1)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_rerun_with_fewer_people_leaves_no_results_of_the_earlier_one(
    clip, standin_weights, tmp_path
):
    video = tmp_path / "clip.mp4"
    shutil.copy(clip.video, video)
    out = tmp_path / "out"
    model = ("--weights", standin_weights[8], *MODEL, "-o", out, "-q")
    run_cli(
        "analyze", video, "--bbox", people_csv(tmp_path / "three.csv", 3), "--landmarks", *model
    )
    assert (out / "clip.face3.csv").is_file() and (out / "clip.face3.landmarks.stream~").is_file()
    alien = out / "clip.face3.notes.txt"  # not a name of any result: never touched
    alien.write_text("mine")
    run_cli("analyze", video, "--bbox", people_csv(tmp_path / "two.csv", 2), *model)
    summary = json.loads((out / "clip.emonet.json").read_text())
    assert [entry["person"] for entry in summary["people"]] == ["face1", "face2"]
    left = sorted(p.name for p in out.iterdir())
    expected = sorted(Path(p).name for p in summary["outputs"]) + ["clip.emonet.json"]
    assert left == sorted([*expected, alien.name])
    # One person (boxes beside the input, read as its box file) after several: no person file.
    boxes = shutil.copy(clip.boxes, tmp_path / "clip.stream")
    shutil.copy(f"{clip.boxes}~", f"{boxes}~")
    run_cli("analyze", video, "--bbox", boxes, *model)
    summary = json.loads((out / "clip.emonet.json").read_text())
    expected = sorted(Path(p).name for p in summary["outputs"]) + ["clip.emonet.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*expected, alien.name])
    assert Path(boxes).is_file() and Path(f"{boxes}~").is_file()


# --- open files stay bounded -------------------------------------------------------------------

FEW_DESCRIPTORS = 200  # below what 300 people's ~4 files each would need at once


def limited_descriptors() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (FEW_DESCRIPTORS, FEW_DESCRIPTORS))


def test_many_pending_files_hold_a_bounded_number_of_descriptors(tmp_path):
    from emonet_cli.formats.fileio import PendingFile
    from emonet_cli.formats.handles import MAX_OPEN_OUTPUTS, POOL

    files = [PendingFile(tmp_path / f"f{k}.txt", binary=k % 2 == 1) for k in range(300)]
    for round_ in range(3):
        for k, pending in enumerate(files):
            text = f"{k}:{round_}\n"
            pending.file.write(text.encode() if k % 2 else text)
        assert POOL.holding <= MAX_OPEN_OUTPUTS
        assert len(os.listdir("/proc/self/fd")) < MAX_OPEN_OUTPUTS + 32
    for pending in files[:-1]:
        pending.commit()
    files[-1].discard()
    assert (tmp_path / "f7.txt").read_text() == "7:0\n7:1\n7:2\n"
    assert not (tmp_path / "f299.txt").exists()
    assert sorted(os.listdir(tmp_path)) == sorted(f"f{k}.txt" for k in range(299))
    assert POOL.holding == 0


def test_three_hundred_people_analyse_under_a_low_open_file_limit(family_weights, tmp_path):
    video = make_sample(tmp_path, width=320, height=240, fps=10.0, seconds=0.2, gap=None).video
    boxes = tmp_path / "people.csv"  # one person analysed, the others below --min-face-conf
    rows = ["frame,face,x1,y1,x2,y2,conf"]
    for frame in range(2):
        rows += [
            f"{frame},{k + 1},{(k % 20) * 16},{(k // 20) * 16},{(k % 20) * 16 + 16},"
            f"{(k // 20) * 16 + 16},{0.9 if k == 0 else 0.1}"
            for k in range(300)
        ]
    boxes.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    run_cli(
        "analyze", video, "--bbox", boxes, "--model", "rbdm", "--weights", family_weights["rbdm"],
        "--device", "cpu", "--precision", "fp32", "--min-face-conf", "0.5", "-o", out, "-q",
        preexec_fn=limited_descriptors,
    )  # fmt: skip
    summary = json.loads((out / f"{video.stem}.emonet.json").read_text())
    assert len(summary["people"]) == 300
    assert (out / f"{video.stem}.face300.arousal.annotation~").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no part file left


# --- boxes that do not lie on the frame --------------------------------------------------------


def test_boxes_wholly_off_the_frame_are_no_face_and_counted(clip, standin_weights, tmp_path):
    video = tmp_path / "clip.mp4"
    shutil.copy(clip.video, video)
    boxes = tmp_path / "boxes.csv"  # 96x72 frames: two boxes off them, one partly on
    boxes.write_text(
        "frame,x1,y1,x2,y2,conf\n0,200,10,260,60,0.9\n1,-80,-80,-10,-10,0.9\n2,80,50,140,110,0.9\n"
    )
    proc = run_cli(
        "analyze", video, "--bbox", boxes, "--weights", standin_weights[8], *MODEL, "--json"
    )  # fmt: skip
    warned = [line for line in proc.stderr.splitlines() if "wholly outside" in line]
    assert len(warned) == 1 and "2 of 3 boxes in boxes.csv" in warned[0], proc.stderr
    assert "96x72" in warned[0]
    assert json.loads(proc.stdout)["frames_with_face"] == 1


def stream_declaring(path: Path, source: Path, size: str) -> Path:
    """A copy of the box stream `source` whose meta declares the frame size `size`."""
    from emonet_cli.formats.streams import read_stream, write_stream

    stream = read_stream(source)
    return write_stream(path, stream.data, stream.sr, meta={**stream.meta, "size": size})


def test_a_box_stream_of_a_turned_frame_is_refused(clip, standin_weights, tmp_path):
    video = tmp_path / "clip.mp4"
    shutil.copy(clip.video, video)
    turned = stream_declaring(tmp_path / "turned", clip.boxes, "72:96")
    out = tmp_path / "out"
    proc = run_cli(
        "analyze", video, "--bbox", turned, "--weights", standin_weights[8], *MODEL, "-o", out,
        check=False,
    )  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.startswith("emonet: error:")]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert "72x96" in errors[0] and "96x72" in errors[0] and "turned by 90 degrees" in errors[0]
    assert not out.exists() or not list(out.iterdir())


def test_declared_sizes_of_the_frames_shape_are_accepted():
    from emonet_cli.errors import InputError
    from emonet_cli.faces.on_frame import check_declared_size, declared_size, off_frame

    assert declared_size("1920:1080") == (1920, 1080) and declared_size("junk") is None
    source = Path("boxes.stream")
    check_declared_size(source, (640, 360), (1920, 1080))  # a proxy of the same shape
    check_declared_size(source, (1920, 1088), (1920, 1080))  # a codec's padding
    check_declared_size(source, None, (1920, 1080))
    with pytest.raises(InputError, match="another shape"):
        check_declared_size(source, (640, 480), (1920, 1080))
    with pytest.raises(InputError, match="turned by 90 degrees"):
        check_declared_size(source, (1080, 1920), (1920, 1080))
    boxes = [[-5, -5, 5, 5], [100, 0, 120, 10], [-20, 0, 0, 10], [5, 5, 5, 9]]
    assert off_frame(boxes, 100, 50).tolist() == [False, True, True, False]


def test_leftovers_never_include_inputs_part_files_links_or_other_names(tmp_path):
    from emonet_cli.formats.leftovers import person_results, remove_leftovers

    names = [
        "s.face1.csv", "s.face2.csv", "s.face2.stream", "s.face2.stream~", "s.faces.csv",
        "s.face2.notes.txt", ".s.face2.csv.host.1.abcd1234.part", "t.face2.csv", "s.facex.csv",
    ]  # fmt: skip
    for name in names:
        (tmp_path / name).write_text(name)
    (tmp_path / "s.face3.csv").symlink_to(tmp_path / "t.face2.csv")
    found = person_results(tmp_path, "s", {".csv", ".stream"})
    assert [p.name for p in found] == [
        "s.face1.csv", "s.face2.csv", "s.face2.stream", "s.face3.csv", "s.faces.csv"
    ]  # fmt: skip
    written = [tmp_path / "s.face1.csv", tmp_path / "s.faces.csv"]
    removed = remove_leftovers(found, written, inputs=[tmp_path / "s.face2.stream"])
    assert [p.name for p in removed] == ["s.face2.csv"]
    left = {p.name for p in tmp_path.iterdir()}
    assert left == set(names) - {"s.face2.csv"} | {"s.face3.csv"}


def test_a_rerun_removes_only_names_of_results_whatever_the_summary_lists(
    clip, standin_weights, tmp_path
):
    video = tmp_path / "clip.mp4"
    shutil.copy(clip.video, video)
    out = tmp_path / "out"
    model = ("--weights", standin_weights[8], *MODEL, "-o", out, "-q")
    run_cli("analyze", video, "--landmarks", *model)
    old = out / "clip.landmarks.stream"  # a result the next run no longer writes
    assert old.is_file() and Path(f"{old}~").is_file()
    # A summary edited by hand (or by another version) that lists a user's files too.
    mine = {out / name: name for name in ("clip.mp4", "clip.mov", "clip.notes.txt", "x.csv")}
    mine[out / "clip.csv~"] = "an editor's backup"
    mine[tmp_path / "x.csv"] = "another folder's"
    for path, text in mine.items():
        path.write_text(text)
    summary_file = out / "clip.emonet.json"
    summary = json.loads(summary_file.read_text())
    summary["outputs"] += [str(out / "clip.mp4"), "out/clip.mov", "clip.notes.txt", "../x.csv"]
    summary["outputs"] += ["clip.csv~", str(tmp_path / "clip.mp4")]
    summary_file.write_text(json.dumps(summary))
    run_cli("analyze", video, *model)
    assert not old.exists() and not Path(f"{old}~").exists()
    assert {path: path.read_text() for path in mine} == mine
    assert video.is_file()
    summary = json.loads(summary_file.read_text())
    left = {p.name for p in out.iterdir()}
    kept = {p.name for p in mine if p.parent == out}
    assert left == {Path(p).name for p in summary["outputs"]} | kept | {summary_file.name}


def test_result_names_are_the_inputs_results_and_its_peoples_only():
    from emonet_cli.formats.leftovers import result_name

    suffixes = {".csv", ".valence.annotation", ".stream"}
    results = ["my.clip.csv", "my.clip.face2.csv", "my.clip.face12.valence.annotation",
               "my.clip.faces.csv", "my.clip.stream"]  # fmt: skip
    others = ["my.clip.mp4", "my.clip.notes.txt", "my.clip.csv~", "my.clip.face0.csv",
              "my.clip.facex.csv", "my.clip.face2.notes.txt", "my.clipper.csv", "my.csv",
              "other.csv", "my.clip.face2.stream~"]  # fmt: skip
    assert [name for name in results + others if result_name(name, "my.clip", suffixes)] == results
