"""The rbdm trainer of `emonet discover-module install` under the real `du-process`: it answers
DISCOVER's own rbdm request (video as `input_data`, `face_bb`; `expression`, `valence`,
`arousal`; option `batch_size`) with what `emonet analyze --model rbdm` writes, at DISCOVER's
2-decimal ASCII precision (see test_discover_module.py, whose clip and helpers these are).

DISCOVER's rbdm.py names its ids the other way round (OUTPUT_ID_VALENCE = "arousal"), so its
`arousal` annotation holds the head's valence. Ours follows the head: the valence annotation
holds valence, which these tests check.
"""

from __future__ import annotations

import numpy as np
import pytest
from discover_utils.data.handler.file_handler import FileHandler
from discover_utils.utils.ssi_xml_utils import Trainer
from standin import STANDIN_MAKERS
from test_discover_module import (  # noqa: F401 (clip: the fixture, shared)
    FPS,
    NOT_ANALYSED,
    clip,
    discover_ascii,
    discover_ascii_ms,
    du_process,
    needs_ffprobe,
    request,
    succeeded,
)

from emonet_cli.analysis.analyze import analyze_file
from emonet_cli.discover import install_module
from emonet_cli.discover.processor import check_ids
from emonet_cli.discover.spec import RBDM_MODULE, RequestError, parse_options
from emonet_cli.faces import BoxSource
from emonet_cli.formats.annotations import read_annotation
from emonet_cli.models import registry
from emonet_cli.models.rbdm.architecture import CLASS_NAMES
from emonet_cli.models.rbdm.inference import FILENAME, WEIGHTS_ENV
from emonet_cli.models.weights import checkout_weights_dir
from emonet_cli.outputs.writers import OutputOptions

# DISCOVER's rbdm.trainer: its ids, in order, and its one option.
INPUTS = ["input_data", "face_bb"]
OUTPUTS = ["expression", "valence", "arousal"]
OPTIONS = ["batch_size"]


@pytest.fixture(scope="module")
def rbdm_weights(tmp_path_factory):
    return STANDIN_MAKERS["rbdm"](tmp_path_factory.mktemp("rbdm-weights"))


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    folder = tmp_path_factory.mktemp("discover") / "modules"
    folder.mkdir()
    install_module(folder)
    return folder


@pytest.fixture(scope="module")
def analyzed(clip, rbdm_weights, tmp_path_factory):  # noqa: F811 (the imported fixture)
    """`emonet analyze --model rbdm`'s annotations (the registry's loader and predictor, fp32)."""
    video, boxes = clip
    family = registry.family("rbdm")
    loaded = family.load(weights=rbdm_weights, offline=True, progress=False)
    predictor = family.predictor_for(loaded, "cpu", "fp32")
    out = tmp_path_factory.mktemp("analyze-rbdm")
    analyze_file(video, predictor, BoxSource(path=boxes), options=OutputOptions(directory=out))
    return {kind: read_annotation(out / f"astronaut.{kind}.annotation") for kind in OUTPUTS}


@pytest.fixture(scope="module")
def discovered(clip, rbdm_weights, modules):  # noqa: F811 (the imported fixture)
    """DISCOVER's rbdm request, run by du-process on our rbdm trainer: its annotations and log.
    Batches of 3 crops (analyze: 8): results do not depend on them."""
    video, boxes = clip
    work = modules.parent
    out = work / "out"
    out.mkdir()
    data = request("input_data", video, "file:stream", boxes, out, streams=False)
    options = ["--opt_str", "batch_size=3;precision=fp32;device=cpu"]
    trainer = RBDM_MODULE.trainer_name
    proc = du_process(modules, data, options, rbdm_weights, work, trainer, WEIGHTS_ENV)
    succeeded(proc)
    loaded = {kind: FileHandler().load(out / f"{kind}.annotation") for kind in OUTPUTS}
    return loaded, proc.stdout + proc.stderr


def test_the_rbdm_trainer_declares_discovers_ids_and_options(modules):
    trainer = Trainer()
    trainer.load_from_file(modules / "emonet_cli" / RBDM_MODULE.trainer_name)
    assert (trainer.model_create, trainer.model_script_path) == (
        "RbdmModule",
        "emonet_cli_module.py",
    )
    ios = [(io.io_type, io.io_id) for io in trainer.meta_io]
    assert [i for kind, i in ios if kind == "input"] == INPUTS
    assert [i for kind, i in ios if kind == "output"] == OUTPUTS
    declared = [item.strip("{}").split(":")[0] for item in trainer.model_optstr.split(";")]
    assert set(OPTIONS) <= set(declared) and "weights" in declared
    assert "swaps the two" in trainer.meta_description


@needs_ffprobe
def test_expression_equals_analyze_with_rbdm(discovered, analyzed):
    annotations, log = discovered
    loaded, ours = annotations["expression"], analyzed["expression"]
    assert "emonet: RBDM, 8-class weights" in log
    np.testing.assert_array_equal(loaded.data["id"], ours.data["id"])
    np.testing.assert_array_equal(loaded.data["conf"], discover_ascii(ours.data["conf"]))
    np.testing.assert_array_equal(loaded.data["from"], discover_ascii_ms(ours.data["from"]))
    np.testing.assert_array_equal(loaded.data["to"], discover_ascii_ms(ours.data["to"]))
    classes = loaded.annotation_scheme.classes
    assert tuple(classes[str(i)]["name"] for i in range(8)) == CLASS_NAMES
    assert np.flatnonzero(loaded.data["id"] == -1).tolist() == NOT_ANALYSED


@needs_ffprobe
@pytest.mark.parametrize("dimension", ["valence", "arousal"])
def test_valence_and_arousal_are_each_under_their_own_id(discovered, analyzed, dimension):
    loaded = discovered[0][dimension]
    scheme = loaded.annotation_scheme
    assert (scheme.sample_rate, scheme.min_val, scheme.max_val) == (FPS, -1.0, 1.0)
    ours = analyzed[dimension].data  # analyze's valence is the head's first output
    np.testing.assert_array_equal(loaded.data["score"], discover_ascii(ours["score"]))
    np.testing.assert_array_equal(loaded.data["conf"], discover_ascii(ours["conf"]))
    # Guards the comparison: at this precision a swap of the two would show.
    other = analyzed["arousal" if dimension == "valence" else "valence"].data["score"]
    assert not np.array_equal(loaded.data["score"], discover_ascii(other), equal_nan=True)


@needs_ffprobe
def test_missing_rbdm_weights_end_du_process_with_one_clear_line(clip, modules):  # noqa: F811
    checkout = checkout_weights_dir()
    if checkout is not None and (checkout / FILENAME).is_file():
        pytest.skip(f"the published weights are in {checkout}: nothing is missing")
    video, boxes = clip
    work = modules.parent
    data = request("input_data", video, "file:stream", boxes, work, streams=False)
    proc = du_process(modules, data, [], None, work, RBDM_MODULE.trainer_name)
    assert proc.returncode == 1
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith("emonet_cli.errors.WeightsError: no RBDM weights in "), last_line
    assert f"or set {WEIGHTS_ENV}" in last_line


def test_options_and_outputs_rbdm_does_not_take_are_refused():
    unknown = "^unknown option num_expressions: the rbdm module takes batch_size, face_detection"
    with pytest.raises(RequestError, match=unknown):
        parse_options({"num_expressions": 8}, RBDM_MODULE)
    assert parse_options({"batch_size": "50"}, RBDM_MODULE).batch_size == 50  # DISCOVER's
    with pytest.raises(RequestError, match="^unknown output id landmarks: the rbdm module's "):
        check_ids({"input_data": None}, {"landmarks": None}, RBDM_MODULE)
