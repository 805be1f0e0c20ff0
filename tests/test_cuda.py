"""The CUDA path against the CPU: every family's fp32 equals the CPU's, bf16 and fp16 stay within
the precision policy's tolerance, the detector finds the CPU's boxes, a face's outputs do not
depend on where it sits in a batch, and the device's failures (a batch that does not fit, a
device that is not there) end in one line. The CUDA tests are skipped where CUDA is missing;
the one-line checks run everywhere.

Runs under pytest, or without it (an accelerator machine may lack pytest):
`python tests/test_cuda.py` runs every test, prints one line each and exits non-zero on a
failure (benchmarks/gpu_check.sh does that).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import cv2
import numpy as np
import torch

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # run as a script: the helpers beside it
    sys.path.insert(0, str(TESTS))

from cli_helpers import cli_env, run_cli  # noqa: E402
from standin import STANDIN_MAKERS  # noqa: E402

try:
    import pytest
except ImportError:  # run as a script on a machine without pytest
    pytest = None

CUDA = torch.cuda.is_available()
FP32_TOLERANCE = 1e-4  # CUDA float32 against the CPU's, every output
# The precision policy's promise (tests/test_model.py): valence, arousal and class
# probabilities within 0.02 of float32; fp16 keeps 3 more bits of mantissa than bf16. EMOTIC's
# come from its 1-10 scale, where bf16 keeps about 0.02 before the rescaling to [-1, 1]
# (measured 0.017 in bf16 on an AMX CPU).
AUTOCAST_TOLERANCE = {"bf16": 0.02, "fp16": 0.02}
FAMILY_TOLERANCE = {"emotic": 0.05}
FAMILIES = ("emonet", "rbdm", "emotic")
MEMORY_CAP_MB = 512  # the allocator's limit in the out-of-memory test


def needs_cuda(test):
    """Skipped where CUDA is missing (pytest's skip; the script runner reads the flag)."""
    test.needs_cuda = True
    if pytest is not None:
        return pytest.mark.skipif(not CUDA, reason="no CUDA device")(test)
    return test


@functools.lru_cache(maxsize=1)
def scratch() -> Path:
    """A folder for this process's stand-in weights and clips, removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="emonet-cuda-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.cache
def loaded(family: str):
    """The family's network with its stand-in values. RBDM's is built from the stand-in's
    arrays directly: its .h5 needs h5py, which an accelerator machine may not have."""
    from emonet_cli.models import registry

    if family == "rbdm":
        from emonet_cli.models.rbdm.inference import LoadedRbdm, load_keras_weights
        from emonet_cli.models.rbdm.keras_layout import standin_arrays
        from emonet_cli.models.rbdm.network import RbdmNet

        model = RbdmNet()
        load_keras_weights(model, standin_arrays())
        return LoadedRbdm(model.eval(), model.nclass, Path("standin"), "", None)
    return registry.family(family).load(STANDIN_MAKERS[family](scratch()), offline=True)


def predictor(family: str, device: str, precision: str):
    import copy

    from emonet_cli.models import registry

    # A copy: a predictor moves its network to its device.
    return registry.family(family).predictor_for(copy.deepcopy(loaded(family)), device, precision)


@functools.cache
def model_inputs(family: str, count: int = 6):
    """`count` inputs cut by the family's crop from the astronaut photograph, each from a
    box shifted a little (faces for EmoNet and RBDM, people for EMOTIC)."""
    from skimage import data

    from emonet_cli.faces import FrameFace
    from emonet_cli.media.frames import Frame
    from emonet_cli.models import registry

    model = registry.family(family)
    crop = model.crop.for_boxes(model.file_boxes)
    frame = Frame(0, 0.0, bgr=cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    face = np.array([170.0, 40.0, 310.0, 220.0])
    person = np.array([40.0, 20.0, 470.0, 510.0])
    box = person if model.file_boxes == "person" else face
    cuts = [crop.cut(frame, FrameFace(box + 6.0 * k, 1.0))[0] for k in range(count)]
    return crop.stack(cuts)


def scores(family: str, device: str, precision: str, inputs=None) -> dict[str, np.ndarray]:
    """What the writers write of the family's outputs, by name."""
    from emonet_cli.models.predictions import softmax

    out = predictor(family, device, precision)(model_inputs(family) if inputs is None else inputs)
    named = {"valence": out.valence, "arousal": out.arousal, "heads": out.heads()}
    if out.expression.shape[1]:
        named["probabilities"] = softmax(out.expression)
    if out.dominance is not None:
        named["dominance"] = out.dominance
    if np.isfinite(out.embedding).all():
        named["embedding"] = out.embedding
    return named


def assert_close(family: str, precision: str, names: tuple[str, ...], tolerance: float) -> None:
    expected = scores(family, "cpu", "fp32")
    found = scores(family, "cuda", precision)
    for name in names:
        if name in expected:
            error = float(np.abs(found[name] - expected[name]).max())
            assert error <= tolerance, f"{family} {precision} {name}: {error:.2e} > {tolerance}"


@needs_cuda
def test_cuda_fp32_equals_the_cpu_for_each_family():
    for family in FAMILIES:
        assert_close(family, "fp32", ("heads", "embedding"), FP32_TOLERANCE)


@needs_cuda
def test_cuda_bf16_and_fp16_stay_within_their_tolerance():
    for family in FAMILIES:
        for precision, tolerance in AUTOCAST_TOLERANCE.items():
            names = ("valence", "arousal", "dominance", "probabilities")
            assert_close(family, precision, names, FAMILY_TOLERANCE.get(family, tolerance))


@needs_cuda
def test_a_face_gives_the_same_bytes_wherever_it_sits_in_a_batch():
    """What makes `--decoders N` byte-identical to one decoder: batches of one shape, and a
    face's outputs independent of the other faces in its batch and of its place there."""
    for family in ("emonet", "rbdm"):
        inputs = model_inputs(family)
        shuffled = inputs[[3, 0, 5, 1, 4, 2]]
        first = scores(family, "cuda", "bf16", inputs)["heads"]
        again = scores(family, "cuda", "bf16", shuffled)["heads"]
        assert np.array_equal(first[[3, 0, 5, 1, 4, 2]], again), family


@needs_cuda
def test_the_detector_on_cuda_finds_the_cpus_boxes():
    from skimage import data

    from emonet_cli.faces.detection.blazeface import BlazeFace

    frames = [data.astronaut(), np.ascontiguousarray(data.astronaut()[:, ::-1])]
    cpu = BlazeFace(device="cpu", precision="fp32").detect(frames)
    cuda = BlazeFace(device="cuda", precision="fp32").detect(frames)
    assert all(len(found) for found in cpu), "the astronaut's face is found on the CPU"
    for on_cpu, on_cuda in zip(cpu, cuda):
        assert on_cuda.shape == on_cpu.shape
        # Coordinates are fractions of the frame: 1e-4 is a twentieth of a pixel here.
        np.testing.assert_allclose(on_cuda, on_cpu, atol=1e-4)


def tiny_clip(folder: Path, frames: int = 8, size: tuple[int, int] = (64, 48)) -> Path:
    """A small MPEG-4 clip of noise frames, each a whole-frame 'face' for --full-frame."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"clip{frames}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    rng = np.random.default_rng(frames)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


@needs_cuda
def test_a_batch_too_large_for_the_device_is_one_line_naming_batch_size():
    """The allocator capped at MEMORY_CAP_MB: a batch of 256 faces cannot fit (its first
    activation alone is 0.5 GB in bf16), a batch of 1 does; the remedy the line names works."""
    folder = scratch() / "out-of-memory"
    clip = tiny_clip(folder, frames=256)
    weights = STANDIN_MAKERS["emonet"](folder)
    fraction = MEMORY_CAP_MB * 2**20 / torch.cuda.get_device_properties(0).total_memory
    capped = (
        f"import sys, torch; torch.cuda.set_per_process_memory_fraction({fraction!r}); "
        "from emonet_cli.cli import main; sys.argv[0] = 'emonet'; main()"
    )
    common = ["analyze", clip, "--full-frame", "--weights", weights, "--device", "cuda"]
    for batch, status in ((256, 1), (1, 0)):
        out = folder / f"batch{batch}"
        command = [sys.executable, "-c", capped, *map(str, common), "-o", str(out)]
        command += ["--batch-size", str(batch), "--precision", "bf16"]
        proc = subprocess.run(command, capture_output=True, text=True, env=cli_env(), timeout=300)
        assert proc.returncode == status, proc.stderr
        if status:
            (line,) = proc.stderr.splitlines()
            assert line.startswith(f"emonet: error: {clip}: cuda") and "--batch-size" in line
            assert "out of memory" in line and not list(out.glob("*"))


def test_a_device_that_is_not_there_is_one_line():
    """--device cuda:9: CUDA missing, or fewer devices (an H200 machine has one)."""
    clip = tiny_clip(scratch() / "device")
    for command in ("analyze", "detect"):
        extra = ("--full-frame",) if command == "analyze" else ()
        out = scratch() / f"device-{command}"
        proc = run_cli(command, clip, *extra, "--device", "cuda:9", "-o", out, check=False)
        assert proc.returncode == 1
        (line,) = proc.stderr.splitlines()
        assert line.startswith("emonet: error: device 'cuda:9' requested but ")
        assert ("CUDA is not available" in line) != CUDA
        assert not out.exists() or not list(out.iterdir())


def test_out_of_memory_in_a_model_call_becomes_one_line_naming_batch_size():
    """Where no device runs out of memory on demand: torch's error raised inside the network,
    as CUDA raises it, reaches the run as one line naming the input and --batch-size."""
    from emonet_cli.errors import DeviceMemoryError
    from emonet_cli.run.one_input import Outcome, guarded

    emonet = predictor("emonet", "cpu", "fp32")

    def exhausted(*_):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    emonet.model.register_forward_pre_hook(exhausted)
    clip = Path("clip.mp4")
    try:
        guarded(clip, lambda: Outcome(clip, "ok", report=emonet(model_inputs("emonet"))))
    except DeviceMemoryError as exc:
        message = str(exc)
    else:
        raise AssertionError("the error did not end the run")
    assert message == (
        "clip.mp4: cpu ran out of memory on a batch of 6 faces: run with a smaller --batch-size"
    )


def test_gpu_check_ends_at_once_with_one_line_where_no_cuda_is_visible():
    """benchmarks/gpu_check.sh with every device hidden (CUDA_VISIBLE_DEVICES empty): one
    line saying so, a non-zero exit, nothing installed or measured."""
    script = TESTS.parent / "benchmarks" / "gpu_check.sh"
    env = {**cli_env(), "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 1
    (line,) = (proc.stdout + proc.stderr).splitlines()
    assert line.startswith("gpu_check: no CUDA device visible to ") and line.endswith("nothing run")


def main() -> int:
    """Every test of this module without pytest: one line each, status 1 on a failure."""
    failed = 0
    for name, test in list(globals().items()):
        if not name.startswith("test_") or not callable(test):
            continue
        if getattr(test, "needs_cuda", False) and not CUDA:
            print(f"skipped {name} (no CUDA device)", flush=True)
            continue
        try:
            test()
        except Exception:
            failed += 1
            print(f"FAILED {name}\n{traceback.format_exc()}", flush=True)
        else:
            print(f"passed {name}", flush=True)
    print(f"{failed} failed" if failed else "all passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
