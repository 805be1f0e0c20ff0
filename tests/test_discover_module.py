"""emonet-cli as a DISCOVER module: the real `du-process` of hcai-discover-utils runs our
installed module folder on a generated video and a box stream written by DISCOVER's own
stream writer, and what it writes equals `emonet analyze`'s results.

Precision: DISCOVER writes annotations as ASCII only, with `%.2f` (times in seconds, scores,
confidences), and loads times back into int32 milliseconds by truncation. Annotation values are
therefore compared after that same rounding; the landmark and embedding streams (binary) are
compared exactly, and `test_annotation_rows_equal_analyze_writers_exactly` checks our
conversion before DISCOVER's rounding, number for number.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import run_cli
from discover_utils.data.handler.file_handler import FileHandler
from discover_utils.data.stream import SSIStream
from discover_utils.utils.request_utils import parse_src_tag
from discover_utils.utils.ssi_xml_utils import Trainer

from emonet_cli import __version__
from emonet_cli.analysis.analyze import analyze_file
from emonet_cli.analysis.pipeline import AnalysisSettings
from emonet_cli.constants import CLASS_NAMES, Classes
from emonet_cli.demo import make_sample
from emonet_cli.discover import MODULE_FOLDER, install_module
from emonet_cli.discover.install import InstallError, requirement_line
from emonet_cli.discover.processor import (
    EmoNetModule,
    SessionRun,
    check_ids,
    dimension_annotation,
    expression_annotation,
)
from emonet_cli.discover.results import FrameResults, held_frames
from emonet_cli.discover.spec import (
    DEFAULTS,
    EMONET_MODULE,
    MODULES,
    ModuleOptions,
    RequestError,
    parse_options,
)
from emonet_cli.errors import InputError
from emonet_cli.faces import BoxSource
from emonet_cli.faces.detection.detector import DetectionSettings
from emonet_cli.finetune.state import adapt_head, save_checkpoint
from emonet_cli.formats.annotations import read_annotation
from emonet_cli.formats.streams import read_stream
from emonet_cli.media.frames import MediaInfo
from emonet_cli.models.emonet.checkpoint import load_model
from emonet_cli.models.emonet.inference import Predictor
from emonet_cli.outputs.results import ResultBatch
from emonet_cli.outputs.writers import (
    DimensionAnnotationWriter,
    ExpressionAnnotationWriter,
    OutputOptions,
    WriterContext,
)

FPS = 10.0
BOX_RATE = 20.0  # not the video's rate: boxes must be matched by time, not by index
NOT_ANALYSED = [3, 4, 6]  # the face is hidden (3, 4) or its box is below 0.65 (6)
needs_ffprobe = pytest.mark.skipif(
    shutil.which("ffprobe") is None,
    reason="du-process reads videos with ffprobe: install ffmpeg (Debian: apt-get install ffmpeg)",
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """8 frames at 10 fps (face hidden at 0.3-0.5 s) with a 20 Hz box stream written by
    DISCOVER: frame 1's box has confidence 0.7 (analysed; DISCOVER's own emonet used 0.8) and
    frame 6's 0.6 (below the 0.65 default: no face, although one is shown)."""
    folder = tmp_path_factory.mktemp("clip")
    sample = make_sample(
        folder, width=160, height=120, fps=FPS, seconds=0.8, gap=(0.3, 0.5), box_rate=BOX_RATE
    )
    rows = read_stream(sample.boxes).data.astype(np.float32)
    rows[2:4, 4] = 0.7
    rows[12:14, 4] = 0.6
    boxes = folder / "boxes.stream"
    FileHandler().save(SSIStream(data=rows, sample_rate=BOX_RATE), boxes)
    sample.boxes.unlink()
    return sample.video, boxes


@pytest.fixture(scope="module")
def analyzed(clip, standin_weights, tmp_path_factory):
    """`emonet analyze`'s outputs, smoothing off and on: {smooth: output folder}. With the
    trainer's crop: DISCOVER's emonet module arithmetic (float32), not the published float64."""
    video, boxes = clip
    predictor = Predictor(load_model(standin_weights[8]).model, "cpu", "fp32")
    folders = {}
    for smooth in (False, True):
        folders[smooth] = tmp_path_factory.mktemp(f"analyze_smooth_{smooth}")
        analyze_file(
            video,
            predictor,
            BoxSource(path=boxes),
            AnalysisSettings(smooth=smooth, crop=EMONET_MODULE.crop),
            OutputOptions(directory=folders[smooth], landmarks=True, embeddings=True),
        )
    return folders


def du_process(
    modules: Path,
    data: list[dict],
    options: list[str],
    weights: Path | None,
    cwd: Path,
    trainer: str = EMONET_MODULE.trainer_name,
    weights_env: str = "EMONET_WEIGHTS",
):
    """The real DISCOVER entry point on files, as DISCOVER's server calls it: `trainer` of the
    installed folder, `weights` given as `weights_env` (none: no weights but the cache's)."""
    console_script = Path(sys.executable).with_name("du-process")
    command = (
        [str(console_script)]
        if console_script.exists()
        else [sys.executable, "-m", "discover_utils.scripts.process"]
    )
    command += [
        "--trainer_file_path", f"{MODULE_FOLDER}\\{trainer}",
        "--cml_dir", str(modules),
        "--cache_dir", str(cwd / "cache"),
        "--tmp_dir", str(cwd / "tmp"),
        "--data", json.dumps(data),
        *options,
    ]  # fmt: skip
    env = {**os.environ, "EMONET_CACHE": "/nonexistent-cache"}
    for name in ("EMONET_WEIGHTS", "EMONET_RBDM_WEIGHTS"):
        env.pop(name, None)
    if weights is not None:
        env[weights_env] = str(weights)
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def succeeded(proc: subprocess.CompletedProcess) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in output, output
    assert "Processing completed!" in proc.stdout and "exited with error" not in output, output


def request(
    video_id: str, video: Path, boxes_src: str, boxes: Path | None, out: Path, streams: bool
):
    outputs = [("expression", "discrete"), ("valence", "continuous"), ("arousal", "continuous")]
    data = [
        {"src": "file:stream:video", "type": "input", "id": video_id, "uri": str(video)},
        *([{"src": boxes_src, "type": "input", "id": "face_bb", "uri": str(boxes)}] * bool(boxes)),
        *(
            {
                "src": f"file:annotation:{kind}",
                "type": "output",
                "id": name,
                "uri": str(out / f"{name}.annotation"),
            }
            for name, kind in outputs
        ),
    ]
    if streams:
        data += [
            {
                "src": "file:stream:ssistream",
                "type": "output",
                "id": name,
                "uri": str(out / f"{name}.stream"),
            }
            for name in ("landmarks", "embedding")
        ]
    return data


@pytest.fixture(scope="module")
def discovered(clip, standin_weights, tmp_path_factory):
    """du-process's work folder and its outputs, {smooth: folder}. Smoothing off: id `video`,
    typed JSON options, batches of 2 crops (2, 2, 1), the optional streams. Smoothing on: the
    alias `input_data`, options as an --opt_str string, batches of 3 crops (3, 2), an inactive
    output."""
    video, boxes = clip
    work = tmp_path_factory.mktemp("discover")
    modules = work / "modules"
    modules.mkdir()
    install_module(modules)
    # max_faces with a face_bb input: the stream's one face, and a warning in the log.
    typed = {"batch_size": 2, "temporal_smoothing": False, "precision": "fp32", "device": "cpu",
             "max_faces": 2}  # fmt: skip
    as_string = "batch_size=3;temporal_smoothing=true;face_detection_min_conf=0.65;precision=fp32"
    runs = {
        False: ("video", "file:stream:ssistream", True, ["--options", json.dumps(typed)]),
        True: ("input_data", "file:stream", False, ["--opt_str", as_string + ";device=cpu"]),
    }
    folders = {}
    for smooth, (video_id, boxes_src, streams, options) in runs.items():
        folders[smooth] = work / f"out_smooth_{smooth}"
        folders[smooth].mkdir()
        data = request(video_id, video, boxes_src, boxes, folders[smooth], streams)
        if smooth:  # an output the request switches off is neither computed nor written
            inactive = {"id": "embedding", "uri": str(folders[smooth] / "embedding.stream")}
            data.append({"src": "file:stream", "type": "output", "active": False, **inactive})
        proc = du_process(modules, data, options, standin_weights[8], work)
        succeeded(proc)
        (folders[smooth] / "du-process.log").write_text(proc.stdout + proc.stderr)
    return work, folders


def discover_ascii(values: np.ndarray) -> np.ndarray:
    """Values as DISCOVER's ASCII annotation writer keeps them: `%.2f`, read back as float32."""
    return np.array(
        [float(f"{v:.2f}") for v in np.asarray(values, dtype=np.float64)], dtype=np.float32
    )


def discover_ascii_ms(seconds: np.ndarray) -> np.ndarray:
    """Times as they come back from DISCOVER: whole ms, written as `%.2f` s, loaded as int32
    milliseconds by truncation."""
    ms = np.rint(np.asarray(seconds, dtype=np.float64) * 1000.0)
    return np.array([float(f"{m / 1000:.2f}") * 1000 for m in ms]).astype(np.int32)


@needs_ffprobe
@pytest.mark.parametrize("smooth", [False, True], ids=["smoothing-off", "smoothing-on"])
def test_expression_equals_analyze(discovered, analyzed, smooth):
    ours = read_annotation(analyzed[smooth] / "astronaut.expression.annotation")
    loaded = FileHandler().load(discovered[1][smooth] / "expression.annotation")
    np.testing.assert_array_equal(loaded.data["id"], ours.data["id"])
    np.testing.assert_array_equal(loaded.data["conf"], discover_ascii(ours.data["conf"]))
    np.testing.assert_array_equal(loaded.data["from"], discover_ascii_ms(ours.data["from"]))
    np.testing.assert_array_equal(loaded.data["to"], discover_ascii_ms(ours.data["to"]))
    assert loaded.data["to"][-1] == 800  # the last frame lasts 1 / fps
    classes = loaded.annotation_scheme.classes
    assert [classes[str(i)]["name"] for i in range(8)] == ours.scheme.classes
    assert [classes[str(i)]["color"] for i in range(8)] == ours.scheme.colors
    assert np.flatnonzero(loaded.data["id"] == -1).tolist() == NOT_ANALYSED


@needs_ffprobe
@pytest.mark.parametrize("smooth", [False, True], ids=["smoothing-off", "smoothing-on"])
@pytest.mark.parametrize("dimension", ["valence", "arousal"])
def test_valence_and_arousal_equal_analyze(discovered, analyzed, smooth, dimension):
    ours = read_annotation(analyzed[smooth] / f"astronaut.{dimension}.annotation")
    loaded = FileHandler().load(discovered[1][smooth] / f"{dimension}.annotation")
    scheme = loaded.annotation_scheme
    assert (scheme.sample_rate, scheme.min_val, scheme.max_val) == (FPS, -1.0, 1.0)
    np.testing.assert_array_equal(loaded.data["score"], discover_ascii(ours.data["score"]))
    np.testing.assert_array_equal(loaded.data["conf"], discover_ascii(ours.data["conf"]))
    assert np.flatnonzero(np.isnan(loaded.data["score"])).tolist() == NOT_ANALYSED
    assert loaded.data["conf"][1] == np.float32(0.7)  # the box confidence, not the value


def test_smoothing_is_visible_at_discovers_precision(analyzed):
    """Guards the comparisons above: smoothing changes what DISCOVER writes."""
    changed = [
        discover_ascii(
            read_annotation(analyzed[smooth] / "astronaut.arousal.annotation").data["score"]
        )
        for smooth in (False, True)
    ]
    assert not np.array_equal(changed[0], changed[1], equal_nan=True)


@needs_ffprobe
@pytest.mark.parametrize("name", ["landmarks", "embedding"])
def test_streams_equal_analyze_exactly(discovered, analyzed, name):
    ours = read_stream(analyzed[False] / f"astronaut.{name}.stream")
    loaded = FileHandler().load(discovered[1][False] / f"{name}.stream")
    assert loaded.meta_data.sample_rate == FPS
    np.testing.assert_array_equal(loaded.data, ours.data)
    assert not (discovered[1][True] / "embedding.stream").exists()  # requested inactive


@needs_ffprobe
@needs_ffprobe
def test_max_faces_with_a_face_bb_input_says_it_is_ignored(discovered):
    _, folders = discovered
    warning = "emonet: warning: max_faces counts detected faces: with a face_bb input"
    assert warning in (folders[False] / "du-process.log").read_text()
    assert warning not in (folders[True] / "du-process.log").read_text()


def test_a_bad_option_ends_du_process_with_one_clear_line(discovered, clip, standin_weights):
    work, _ = discovered
    video, boxes = clip
    data = request("video", video, "file:stream", boxes, work, streams=False)
    options = ["--opt_str", "num_expressions=7"]
    proc = du_process(work / "modules", data, options, standin_weights[8], work)
    assert proc.returncode == 1
    last_line = proc.stderr.strip().splitlines()[-1]
    assert (
        last_line == "emonet_cli.discover.spec.RequestError: num_expressions must be 5 or 8, not 7"
    )


def synthetic_batches(fps: float, nclass: int = 8) -> list[ResultBatch]:
    """Two batches of results with awkward numbers and frames without a face (no model)."""
    rng = np.random.default_rng(13)
    batches = []
    for frames, face in ((np.arange(0, 3), [1, 1, 0]), (np.arange(3, 7), [1, 0, 1, 1])):
        n, face = len(frames), np.array(face, dtype=bool)
        logits = rng.normal(size=(n, nclass))
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        batches.append(
            ResultBatch(
                frame=frames,
                time=np.round(frames / fps, 6),
                face=face,
                face_conf=np.where(face, rng.uniform(0.65, 1, n), 0).astype(np.float32),
                expression=np.where(face, logits.argmax(axis=1), -1),
                probabilities=np.where(face[:, None], probabilities, np.nan).astype(np.float32),
                valence=np.where(face, rng.uniform(-1, 1, n), np.nan).astype(np.float32),
                arousal=np.where(face, rng.uniform(-1, 1, n), np.nan).astype(np.float32),
                landmarks=np.zeros((n, 68, 2), np.float32),
                embedding=np.zeros((n, 256), np.float32),
            )
        )
    return batches


def test_annotation_rows_equal_analyze_writers_exactly(tmp_path):
    """Our conversion gives exactly the rows `emonet analyze`'s writers write (times in ms)."""
    fps = 30000 / 1001
    batches = synthetic_batches(fps)
    frames = FrameResults(fps)
    info = MediaInfo(tmp_path / "clip.mp4", 64, 48, fps, 7, False)
    context = WriterContext(info, 8, OutputOptions(annotation_ftype="BINARY"), {})
    expression_writer = ExpressionAnnotationWriter(tmp_path / "e.annotation", context)
    valence_writer = DimensionAnnotationWriter(tmp_path / "v.annotation", context, "valence")
    for batch in batches:
        frames.add(batch)
        expression_writer.add(batch)
        valence_writer.add(batch)
    expression_writer.close()
    valence_writer.close()
    run = SessionRun(None, info, frames.finish(), Classes.default(8))
    rows = expression_annotation(run, {}, None, {}).data
    written = read_annotation(tmp_path / "e.annotation").data
    np.testing.assert_array_equal(rows["from"], np.rint(written["from"] * 1000))
    np.testing.assert_array_equal(rows["to"], np.rint(written["to"] * 1000))
    np.testing.assert_array_equal(rows["id"], written["id"])
    np.testing.assert_array_equal(rows["conf"], written["conf"])
    valence = dimension_annotation(run, "valence", {}, None, {})
    written = read_annotation(tmp_path / "v.annotation")
    assert valence.annotation_scheme.sample_rate == written.scheme.sr == fps
    np.testing.assert_array_equal(valence.data["score"], written.data["score"])
    np.testing.assert_array_equal(valence.data["conf"], written.data["conf"])


def test_a_requested_sample_rate_holds_the_frame_shown():
    batches = synthetic_batches(FPS)
    frames = FrameResults(FPS)
    for batch in batches:
        frames.add(batch)
    info = MediaInfo(Path("clip.mp4"), 64, 48, FPS, 7, False)
    run = SessionRun(None, info, frames.finish(), Classes.default(8))
    request = {"id": "arousal", "sample_rate": 4, "min_val": 0, "max_val": "1"}
    arousal = dimension_annotation(run, "arousal", request, None, {})
    scheme = arousal.annotation_scheme
    assert (scheme.sample_rate, scheme.min_val, scheme.max_val) == (4.0, 0.0, 1.0)
    # Samples at 0, 0.25, 0.5 s show frames 0, 2 and 5 of the 0.7 s (10 fps) clip.
    np.testing.assert_array_equal(arousal.data["score"], run.results.arousal[[0, 2, 5]])
    assert len(held_frames(np.arange(23) / 25.0, 25.0, 1.0)) == 1  # a 0.92 s clip at 1 Hz


def test_options_accept_typed_values_and_strings():
    assert parse_options(None) == ModuleOptions()
    assert ModuleOptions() == ModuleOptions(8, 8, 0.65, False, "auto", "auto")
    typed = {
        "num_expressions": 5,
        "batch_size": 3,
        "face_detection_min_conf": 0.7,
        "temporal_smoothing": True,
    }
    strings = {
        "num_expressions": "5",
        "batch_size": "3",
        "face_detection_min_conf": "0.7",
        "temporal_smoothing": "true",
    }
    assert parse_options(typed) == parse_options(strings) == ModuleOptions(5, 3, 0.7, True)
    assert parse_options({"precision": "FP32", "device": "cpu"}).precision == "fp32"
    tracked = parse_options({"max_faces": "3", "track_confirm": 2, "device": "cpu"}).detection()
    assert (tracked.max_faces, tracked.track_confirm, tracked.device) == (3, 2, "cpu")
    for bad, message in [
        ({"num_expressions": 7}, "num_expressions must be 5 or 8"),
        ({"batch_size": "0"}, "batch_size must be at least 1"),
        ({"batch_size": True}, "batch_size must be a whole number"),
        ({"face_detection_min_conf": "high"}, "face_detection_min_conf must be a number"),
        ({"temporal_smoothing": "maybe"}, "temporal_smoothing must be True or False"),
        ({"precision": "fp64"}, "precision must be one of auto, fp32, bf16, fp16"),
        ({"track_confirm": 0}, "track_confirm must be at least 1"),
        ({"batchsize": 4}, "unknown option batchsize"),
    ]:
        with pytest.raises(RequestError, match=message):
            parse_options(bad)


def test_installed_trainer_loads_in_discover_with_our_defaults(tmp_path, monkeypatch):
    folder = install_module(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        "emonet_cli.trainer",
        "emonet_cli_module.py",
        "emonet_cli_rbdm.trainer",
        "requirements.txt",
        "version.py",
    ]
    trainer = Trainer()
    trainer.load_from_file(folder / "emonet_cli.trainer")
    assert (trainer.model_create, trainer.model_script_path) == (
        "EmoNetModule",
        "emonet_cli_module.py",
    )
    declared = dict(item.strip("{}").split(":", 2)[::2] for item in trainer.model_optstr.split(";"))
    assert {name: value.split(",")[0] for name, value in declared.items()} == {
        name: str(value) for name, value in DEFAULTS.items()
    }
    ios = {io.io_id: (io.io_type, io.io_data) for io in trainer.meta_io}
    assert ios["face_bb"] == ("input", "stream:SSIStream:feature;face;boundingbox;blazeface")
    assert [i for i, (kind, _) in ios.items() if kind == "output"] == [
        "expression",
        "valence",
        "arousal",
        "landmarks",
        "embedding",
    ]
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert requirements == [f"emonet-cli[rbdm]=={__version__}", "hcai-discover-utils>=1.2"]
    # DISCOVER's server names the module's environment after version.py: one per release.
    venv_utils = pytest.importorskip("discover.utils.venv_utils", reason="needs hcai-discover")
    monkeypatch.setenv("DISCOVER_CACHE_DIR", str(tmp_path))
    assert venv_utils.venv_dir_from_mod(folder).name == f"emonet_cli@{__version__}"


def test_installer_requirements(tmp_path):
    checkout = Path(__file__).resolve().parent.parent
    assert requirement_line(str(checkout)) == f"emonet-cli[rbdm] @ {checkout.as_uri()}"
    # The rbdm extra (h5py) is added to what the user gives, beside their own extras.
    assert requirement_line("emonet-cli>=0.1") == "emonet-cli[rbdm]>=0.1"
    assert requirement_line("emonet_cli [plot] >=0.1") == "emonet_cli[plot,rbdm] >=0.1"
    assert requirement_line("emonet-cli[rbdm]==0.1") == "emonet-cli[rbdm]==0.1"
    with pytest.raises(InstallError, match="does not install emonet-cli"):
        requirement_line("torch")
    with pytest.raises(InstallError, match="not a Python project folder"):
        requirement_line(str(tmp_path))
    with pytest.raises(InstallError, match="no such folder"):
        install_module(tmp_path / "missing")
    for missing in ("dist/emonet_cli-1.0-py3-none-any.whl", "emonet_cli-1.0.tar.gz", "./src"):
        with pytest.raises(InstallError, match=f"{re.escape(missing)}: no such file or folder"):
            requirement_line(missing)
    notes = tmp_path / "notes.txt"
    notes.write_text("emonet-cli\n")
    with pytest.raises(InstallError, match="not a wheel or sdist"):
        requirement_line(str(notes))
    folder = install_module(tmp_path, str(checkout))
    assert folder == tmp_path / "emonet_cli"
    line = (folder / "requirements.txt").read_text().splitlines()[0]
    assert line == f"emonet-cli[rbdm] @ {checkout.as_uri()}"


@needs_ffprobe
def test_without_face_bb_the_built_in_detector_finds_the_faces(clip, standin_weights, tmp_path):
    """No `face_bb`: the module detects the faces itself, exactly as `emonet analyze` does
    without a box file."""
    video, _ = clip
    modules = tmp_path / "modules"
    modules.mkdir()
    install_module(modules)
    out = tmp_path / "out"
    out.mkdir()
    options = ["--options", json.dumps({"precision": "fp32", "device": "cpu"})]
    data = request("video", video, "", None, out, streams=False)
    proc = du_process(modules, data, options, standin_weights[8], tmp_path)
    succeeded(proc)
    assert "emonet: the request has no face_bb input: faces are found by" in proc.stdout

    predictor = Predictor(load_model(standin_weights[8]).model, "cpu", "fp32")
    detected = BoxSource(detect=DetectionSettings(device="cpu"))
    analyze_file(
        video,
        predictor,
        detected,
        AnalysisSettings(crop=EMONET_MODULE.crop),
        OutputOptions(directory=tmp_path / "ours"),
    )
    ours = read_annotation(tmp_path / "ours" / "astronaut.expression.annotation")
    loaded = FileHandler().load(out / "expression.annotation")
    np.testing.assert_array_equal(loaded.data["id"], ours.data["id"])
    np.testing.assert_array_equal(loaded.data["conf"], discover_ascii(ours.data["conf"]))
    valence = read_annotation(tmp_path / "ours" / "astronaut.valence.annotation")
    loaded = FileHandler().load(out / "valence.annotation")
    np.testing.assert_array_equal(loaded.data["score"], discover_ascii(valence.data["score"]))


@needs_ffprobe
def test_a_fine_tuned_weights_file_brings_its_own_classes(clip, standin_weights, tmp_path):
    """Option `weights`: a 3-class checkpoint as `emonet finetune` writes it. The expression
    scheme carries its class names and colours (num_expressions, which NOVA always sends, is
    ignored) and the ids equal `emonet analyze` with the same file."""
    video, boxes = clip
    names, colors = ["calm", "tense", "joyful"], ["#FF112233", "#FF445566", "#FF778899"]
    model = adapt_head(load_model(standin_weights[8]).model, 3, seed=0)
    weights = save_checkpoint(
        tmp_path / "best.pth", model, {"class_names": names, "class_colors": colors}
    )
    modules = tmp_path / "modules"
    modules.mkdir()
    install_module(modules)
    out = tmp_path / "out"
    out.mkdir()
    typed = {"weights": str(weights), "num_expressions": 8, "precision": "fp32", "device": "cpu"}
    data = request("video", video, "file:stream", boxes, out, streams=False)
    succeeded(du_process(modules, data, ["--options", json.dumps(typed)], weights, tmp_path))

    loaded = FileHandler().load(out / "expression.annotation")
    scheme = loaded.annotation_scheme.classes
    assert [scheme[k]["name"] for k in sorted(scheme, key=int)] == names
    assert [scheme[k]["color"] for k in sorted(scheme, key=int)] == colors
    predictor = Predictor(load_model(weights).model, "cpu", "fp32")
    ours_dir = OutputOptions(directory=tmp_path / "ours")
    analyze_file(video, predictor, BoxSource(path=boxes), options=ours_dir)
    ours = read_annotation(tmp_path / "ours" / "astronaut.expression.annotation")
    np.testing.assert_array_equal(loaded.data["id"], ours.data["id"])
    assert set(ours.data["id"][ours.data["id"] >= 0]) <= {0, 1, 2}

    with pytest.raises(InputError, match="option weights: no such file"):
        EmoNetModule(opts={"weights": str(tmp_path / "missing.pth")})


def test_requests_the_module_cannot_honour_say_why():
    with pytest.raises(RequestError, match="unknown input id face_bbox"):
        check_ids({"video": None, "face_bbox": None}, {"expression": None})
    with pytest.raises(RequestError, match="unknown output id heatmap"):
        check_ids({"video": None}, {"heatmap": None})


def test_discover_refuses_ssifeature_before_any_module_runs():
    """DISCOVER's emonet README asks for `file:stream:ssifeature`; hcai-discover-utils' data
    manager refuses that source tag itself, so docs/discover.md uses `file:stream:ssistream`."""
    with pytest.raises(ValueError, match="Invalid value for data source"):
        parse_src_tag({"src": "file:stream:ssifeature"})
    assert parse_src_tag({"src": "file:stream:ssistream"})[2].value == "ssistream"


def test_class_names_in_the_scheme():
    frames = FrameResults(FPS)
    for batch in synthetic_batches(FPS, nclass=5):
        frames.add(batch)
    info = MediaInfo(Path("c.mp4"), 64, 48, FPS, 7, False)
    run = SessionRun(None, info, frames.finish(), Classes.default(5))
    classes = expression_annotation(run, {"scheme": "emotion5"}, None, {}).annotation_scheme
    assert classes.name == "emotion5"
    assert [c["name"] for c in classes.classes.values()] == list(CLASS_NAMES[5])


def test_the_cli_installs_the_module(tmp_path):
    proc = run_cli("discover-module", "install", tmp_path)
    assert proc.stdout.strip() == (
        f"installed the DISCOVER module in {tmp_path / 'emonet_cli'}, trainers "
        f"emonet_cli.trainer, emonet_cli_rbdm.trainer (requires: emonet-cli[rbdm]=={__version__})"
    )
    assert (tmp_path / "emonet_cli" / "emonet_cli.trainer").is_file()
    missing = run_cli("discover-module", "install", tmp_path / "missing", check=False)
    assert missing.returncode == 1
    assert missing.stderr.startswith("emonet: error: ") and len(missing.stderr.splitlines()) == 1


NUMBER_OPTIONS = [
    (spec, option)
    for spec in MODULES
    for option in spec.options
    if isinstance(option.default, (int, float)) and not isinstance(option.default, bool)
]


@pytest.mark.parametrize(
    "spec, option",
    NUMBER_OPTIONS,
    ids=[f"{spec.family}-{option.name}" for spec, option in NUMBER_OPTIONS],
)
@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity", float("nan"), float("inf")])
def test_every_number_option_of_the_module_refuses_nan_and_infinity(spec, option, value):
    with pytest.raises(RequestError, match=option.name):
        parse_options({option.name: value}, spec)


@pytest.mark.parametrize("key", ["sample_rate", "min_val", "max_val"])
@pytest.mark.parametrize("value", ["nan", float("inf"), "-inf"])
def test_the_numbers_of_an_output_request_must_be_finite(key, value):
    frames = FrameResults(FPS)
    for batch in synthetic_batches(FPS):
        frames.add(batch)
    run = SessionRun(None, MediaInfo(Path("c.mp4"), 64, 48, FPS, 7, False), frames.finish(), None)
    with pytest.raises(RequestError, match=f"{key} must be finite"):
        dimension_annotation(run, "valence", {"id": "valence", key: value}, None, {})
