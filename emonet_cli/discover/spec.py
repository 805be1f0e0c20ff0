"""What the DISCOVER module declares: for each of its trainers (EmoNet's, RBDM's), the input and
output ids, the trainer file and the options with their defaults. The trainers are generated
from these tables, so the defaults NOVA shows and the ones the processor applies cannot drift
apart."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from emonet_cli import __version__
from emonet_cli.analysis.pipeline import DEFAULT_MIN_FACE_CONF, AnalysisSettings
from emonet_cli.constants import PRECISIONS
from emonet_cli.errors import EmonetError
from emonet_cli.faces.align import DISCOVER_EMONET_CROP, FaceCrop
from emonet_cli.faces.detection.detector import DetectionSettings
from emonet_cli.models.emonet.model import NCLASS_CHOICES
from emonet_cli.models.rbdm.preprocess import RBDM_CROP

# One script for every trainer of the folder: DISCOVER makes one environment per module folder.
SCRIPT_NAME = "emonet_cli_module.py"

VIDEO_ID = "video"
VIDEO_ALIASES = ("input_data",)  # the id DISCOVER's own emonet and rbdm modules use
FACE_BOXES_ID = "face_bb"
EXPRESSION_ID = "expression"
DIMENSION_IDS = ("valence", "arousal")
LANDMARKS_ID = "landmarks"
EMBEDDING_ID = "embedding"
INPUT_IDS = (VIDEO_ID, *VIDEO_ALIASES, FACE_BOXES_ID)
OUTPUT_IDS = (EXPRESSION_ID, *DIMENSION_IDS, LANDMARKS_ID, EMBEDDING_ID)
# With several people, `expression_face2` (any output id, `_faceK`) is person K's; the plain id
# is the main person's: the one with the most analysed frames.
PERSON_OUTPUT = re.compile(r"(?P<output>[a-z]+)_(?P<person>face[1-9][0-9]*)")


def split_output_id(output_id: str) -> tuple[str, str | None]:
    """`expression_face2` -> (`expression`, `face2`); `expression` -> (`expression`, None)."""
    match = PERSON_OUTPUT.fullmatch(output_id)
    if match and match["output"] in OUTPUT_IDS:
        return match["output"], match["person"]
    return output_id, None


BLAZEFACE_BOXES = "feature;face;boundingbox;blazeface"  # BlazeFace's media type
STREAM_MEDIA_TYPES = {
    LANDMARKS_ID: "feature;face;landmarks;emonet",
    EMBEDDING_ID: "feature;face;embedding;emonet",
}


class RequestError(EmonetError):
    """A request or option that the module cannot honour."""


@dataclass(frozen=True)
class ModuleIO:
    """One `<io>` line of the trainer: `default_value` is the stream name or annotation scheme
    NOVA proposes; outputs that are not `active` are written only when the user asks."""

    kind: str  # "input" or "output"
    id: str
    data: str
    default_value: str
    active: bool = True


BOX_INPUT = ModuleIO(
    "input", FACE_BOXES_ID, f"stream:SSIStream:{BLAZEFACE_BOXES}", "face_bounding_box"
)
ANNOTATION_OUTPUTS = (
    ModuleIO("output", EXPRESSION_ID, "annotation:Discrete", "emotion"),
    *(ModuleIO("output", d, "annotation:Continuous", d) for d in DIMENSION_IDS),
)
STREAM_OUTPUTS = tuple(
    ModuleIO("output", i, f"stream:SSIStream:{STREAM_MEDIA_TYPES[i]}", f"emonet_{i}", False)
    for i in (LANDMARKS_ID, EMBEDDING_ID)
)


@dataclass(frozen=True)
class Option:
    """A module option as NOVA declares it: `kind` is NOVA's option type (LIST offers
    `choices`, the first being the default; STRING and BOOL hold one value)."""

    name: str
    kind: str
    default: Any
    choices: tuple = ()

    def declaration(self) -> str:
        """The option in the trainer's `optstr`, e.g. `{num_expressions:LIST:8,5}`."""
        offered = (self.default, *self.choices) if self.kind == "LIST" else (self.default,)
        values = ",".join(dict.fromkeys(str(value) for value in offered))
        return f"{{{self.name}:{self.kind}:{values}}}"


EMONET_OPTIONS = (
    Option("num_expressions", "LIST", 8, tuple(sorted(NCLASS_CHOICES, reverse=True))),
    Option("batch_size", "STRING", AnalysisSettings().batch_size),
    Option("face_detection_min_conf", "STRING", DEFAULT_MIN_FACE_CONF),
    Option("temporal_smoothing", "BOOL", False),
    Option("precision", "LIST", PRECISIONS[0], PRECISIONS),
    Option("device", "STRING", "auto"),
    Option("max_faces", "STRING", 1),
    Option("track_confirm", "STRING", 1),
    Option("weights", "STRING", ""),
)
DEFAULTS = {option.name: option.default for option in EMONET_OPTIONS}


@dataclass(frozen=True)
class ModuleSpec:
    """One trainer of the module folder: the model family (models.registry) it runs, the
    processor class DISCOVER creates for it, what it reads and writes, its options, and the
    crop of DISCOVER's own module for that model (its float32 arithmetic)."""

    family: str
    model_name: str  # in the trainer's and the annotations' descriptions
    processor_class: str
    trainer_name: str
    description: str
    ios: tuple[ModuleIO, ...]
    options: tuple[Option, ...]
    crop: FaceCrop

    @property
    def defaults(self) -> dict[str, Any]:
        return {option.name: option.default for option in self.options}

    @property
    def output_ids(self) -> tuple[str, ...]:
        return tuple(io.id for io in self.ios if io.kind == "output")


EMONET_MODULE = ModuleSpec(
    family="emonet",
    model_name="EmoNet",
    processor_class="EmoNetModule",
    trainer_name="emonet_cli.trainer",
    description=(
        f"EmoNet (emonet-cli {__version__}): facial expression (5 or 8 classes), valence and "
        "arousal per video frame, from BlazeFace boxes"
    ),
    ios=(
        ModuleIO("input", VIDEO_ID, "stream:Video", "video"),
        BOX_INPUT,
        *ANNOTATION_OUTPUTS,
        *STREAM_OUTPUTS,
    ),
    options=EMONET_OPTIONS,
    crop=DISCOVER_EMONET_CROP,  # `emonet analyze` keeps the published (float64) crop
)
# DISCOVER's rbdm trainer: input_data and face_bb in; expression, valence, arousal out; option
# batch_size. RBDM has 8 classes and no landmarks or embedding: num_expressions and the
# streams are not offered.
RBDM_MODULE = ModuleSpec(
    family="rbdm",
    model_name="RBDM",
    processor_class="RbdmModule",
    trainer_name="emonet_cli_rbdm.trainer",
    description=(
        f"RBDM (emonet-cli {__version__}), DISCOVER's multitask MobileNetV2: 8 facial "
        "expressions, valence and arousal per video frame, from BlazeFace boxes. Valence is "
        "written as valence and arousal as arousal (DISCOVER's rbdm module swaps the two)"
    ),
    ios=(
        # As DISCOVER's rbdm trainer declares it (`video` is accepted as well).
        ModuleIO("input", VIDEO_ALIASES[0], "stream:Video", "video"),
        BOX_INPUT,
        *ANNOTATION_OUTPUTS,
    ),
    options=tuple(option for option in EMONET_OPTIONS if option.name != "num_expressions"),
    crop=RBDM_CROP,  # the family's own crop: `--model rbdm` cuts the module's crop too
)
MODULES = (EMONET_MODULE, RBDM_MODULE)  # the trainers `install_module` writes


@dataclass(frozen=True)
class ModuleOptions:
    """The options of one run, checked and typed."""

    num_expressions: int = DEFAULTS["num_expressions"]
    batch_size: int = DEFAULTS["batch_size"]
    face_detection_min_conf: float = DEFAULTS["face_detection_min_conf"]
    temporal_smoothing: bool = DEFAULTS["temporal_smoothing"]
    precision: str = DEFAULTS["precision"]
    device: str = DEFAULTS["device"]
    max_faces: int = DEFAULTS["max_faces"]  # above 1: detect and track several people
    track_confirm: int = DEFAULTS["track_confirm"]  # frames in a row that make a new person
    # A weights file (e.g. `emonet finetune`'s best.pth): its classes replace num_expressions.
    weights: str = DEFAULTS["weights"]

    def detection(self) -> DetectionSettings:
        """How the built-in detector finds faces when the request gives no `face_bb`."""
        return DetectionSettings(
            device=self.device, max_faces=self.max_faces, track_confirm=self.track_confirm
        )

    def settings(self, crop: FaceCrop | None = None) -> AnalysisSettings:
        """The pipeline's settings; `crop`: the trainer's (None: the model family's)."""
        return AnalysisSettings(
            batch_size=self.batch_size,
            min_face_conf=self.face_detection_min_conf,
            smooth=self.temporal_smoothing,
            crop=crop,
        )


def parse_options(given: dict[str, Any] | None, spec: ModuleSpec = EMONET_MODULE) -> ModuleOptions:
    """Options as NOVA sends them (typed JSON) or as `du-process --opt_str` parses them
    (numbers and True/False converted, anything else left a string): both are accepted, if
    `spec`'s trainer declares them."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(spec.defaults))
    if unknown:
        known = ", ".join(spec.defaults)
        raise RequestError(
            f"unknown option {', '.join(unknown)}: the {spec.family} module takes {known}"
        )
    values: dict[str, Any] = {}
    if "num_expressions" in given:
        values["num_expressions"] = _integer("num_expressions", given["num_expressions"])
        if values["num_expressions"] not in NCLASS_CHOICES:
            raise RequestError(
                f"num_expressions must be {' or '.join(map(str, NCLASS_CHOICES))}, "
                f"not {given['num_expressions']!r}"
            )
    if "batch_size" in given:
        values["batch_size"] = _integer("batch_size", given["batch_size"])
        if values["batch_size"] < 1:
            raise RequestError(f"batch_size must be at least 1, not {given['batch_size']!r}")
    if "face_detection_min_conf" in given:
        conf = _number("face_detection_min_conf", given["face_detection_min_conf"])
        if not 0.0 <= conf <= 1.0:
            raise RequestError(f"face_detection_min_conf must be within 0..1, not {conf:g}")
        values["face_detection_min_conf"] = conf
    if "temporal_smoothing" in given:
        values["temporal_smoothing"] = _boolean("temporal_smoothing", given["temporal_smoothing"])
    for name in ("max_faces", "track_confirm"):
        if name in given:
            values[name] = _integer(name, given[name])
            if values[name] < 1:
                raise RequestError(f"{name} must be at least 1, not {given[name]!r}")
    for name in ("precision", "device"):
        if name in given:
            values[name] = str(given[name]).strip().lower()
    if "weights" in given:
        values["weights"] = str(given["weights"]).strip()
    if values.get("precision", "auto") not in PRECISIONS:
        raise RequestError(
            f"precision must be one of {', '.join(PRECISIONS)}, not {given['precision']!r}"
        )
    return ModuleOptions(**values)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise RequestError(f"{name} must be a whole number, not {value!r}")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise RequestError(f"{name} must be a whole number, not {value!r}") from None


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise RequestError(f"{name} must be a number, not {value!r}")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise RequestError(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise RequestError(f"{name} must be a finite number, not {value!r}")
    return number


TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def _boolean(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise RequestError(f"{name} must be True or False, not {value!r}")


def trainer_xml(spec: ModuleSpec = EMONET_MODULE) -> str:
    """The `.trainer` file of `spec`: its inputs and outputs, the processor class and script,
    and the options with their defaults. It names no weights: the processor finds them by the
    CLI's rules."""
    root = ET.Element("trainer", {"ssi-v": "5"})
    ET.SubElement(root, "info", {"trained": "true"})
    meta = ET.SubElement(
        root,
        "meta",
        {
            "backend": "nova-server",
            "category": "Emotion",
            "description": spec.description,
            "is_iterable": "False",
        },
    )
    for io in spec.ios:
        attributes = {
            "type": io.kind,
            "id": io.id,
            "data": io.data,
            "default_value": io.default_value,
        }
        if not io.active:
            attributes["default_active"] = "False"
        ET.SubElement(meta, "io", attributes)
    ET.SubElement(
        root,
        "model",
        {
            "create": spec.processor_class,
            "script": SCRIPT_NAME,
            "optstr": ";".join(option.declaration() for option in spec.options),
        },
    )
    ET.indent(root, space="    ")
    return '<?xml version="1.0" ?>\n' + ET.tostring(root, encoding="unicode") + "\n"
