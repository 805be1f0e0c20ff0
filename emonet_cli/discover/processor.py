"""The classes DISCOVER instantiates for the module's trainers (`du-process` builds one from the
trainer, calls `process_data` on each session, then `to_output`, and saves what it returns):
`EmoNetModule` for emonet_cli.trainer, `RbdmModule` for emonet_cli_rbdm.trainer.

It runs the same streaming pipeline as `emonet analyze` on the session's video file, with the
crop of DISCOVER's own module for the model (its float32 arithmetic, `ModuleSpec.crop`: for
RBDM that is `--model rbdm`'s crop, for EmoNet it differs from the published float64 crop of
`emonet analyze` by a grey level in some pixels); only the whole-video outputs DISCOVER's
interface asks for are kept in memory (a few numbers per frame, plus landmarks or embeddings
when those streams are requested).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from discover_utils.data.annotation import (
    ContinuousAnnotation,
    ContinuousAnnotationScheme,
    DiscreteAnnotation,
    DiscreteAnnotationScheme,
)
from discover_utils.data.provider.data_manager import SessionManager
from discover_utils.data.stream import SSIStream, Video
from discover_utils.interfaces.server_module import Processor
from discover_utils.utils.log_utils import log
from discover_utils.utils.request_utils import Origin, parse_src_tag

from emonet_cli.analysis.pipeline import Analysis
from emonet_cli.constants import Classes
from emonet_cli.discover.faces import box_source_for
from emonet_cli.discover.outputs import check_declared_classes, check_output_folders
from emonet_cli.discover.results import (
    FrameResults,
    VideoResults,
    dimension_samples,
    milliseconds,
)
from emonet_cli.discover.spec import (
    DIMENSION_IDS,
    EMBEDDING_ID,
    EMONET_MODULE,
    EXPRESSION_ID,
    FACE_BOXES_ID,
    INPUT_IDS,
    LANDMARKS_ID,
    RBDM_MODULE,
    STREAM_MEDIA_TYPES,
    VIDEO_ALIASES,
    VIDEO_ID,
    ModuleSpec,
    RequestError,
    parse_options,
    split_output_id,
)
from emonet_cli.errors import EmonetError, InputError
from emonet_cli.media.frames import MediaInfo
from emonet_cli.media.video import MediaReader
from emonet_cli.models import registry
from emonet_cli.outputs.annotation_writers import frame_segments

EXPRESSION_SCHEME = "emotion"


@dataclass
class SessionRun:
    """What `process_data` hands to `to_output`: one session's results and its request."""

    session: SessionManager
    info: MediaInfo
    results: VideoResults  # the main person's (the one person's, with a single face)
    classes: Classes  # the model's: names and NOVA colours
    people: dict[str | None, VideoResults] = field(default_factory=dict)  # several: by label
    spec: ModuleSpec = EMONET_MODULE  # the trainer that ran: its model names the annotations


class EmoNetModule(Processor):
    """EmoNet on a session's video: `expression` (discrete), `valence` and `arousal`
    (continuous), optionally `landmarks` and `embedding` streams."""

    chainable = False
    spec: ModuleSpec = EMONET_MODULE  # the trainer it answers, and the family that runs

    def __init__(self, model_io=None, opts: dict | None = None, trainer=None):
        super().__init__(model_io=model_io, opts=dict(opts or {}), trainer=trainer)
        try:
            self.module_options = parse_options(opts, self.spec)
            loaded = self._load_model()
            self.predictor = registry.family(self.spec.family).predictor_for(
                loaded, self.module_options.device, self.module_options.precision
            )
        except EmonetError as error:
            raise error.with_traceback(None) from None  # the message says it all
        log(
            f"emonet: {self.spec.model_name}, {loaded.nclass}-class weights {loaded.path} "
            f"(SHA-256 {loaded.sha256}), device {self.predictor.device}, "
            f"precision {self.predictor.precision}"
        )

    def _load_model(self) -> Any:
        """The family's published weights (EmoNet's with `num_expressions` classes), or the
        `weights` file with its own classes (num_expressions, always sent by NOVA, is then
        ignored). Returns what the family's loader returns."""
        family = registry.family(self.spec.family)
        weights = self.module_options.weights
        if weights:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise InputError(f"option weights: no such file {path}")
            return family.load(weights=path, progress=False)
        return family.load(nclass=self.module_options.num_expressions, progress=False)

    def process_data(self, ds_manager) -> SessionRun:
        session = self.get_session_manager(ds_manager)
        try:
            return self._analyse(session)
        except EmonetError as error:
            raise error.with_traceback(None) from None

    def to_output(self, data: SessionRun) -> dict[str, Any]:
        try:
            templates = data.session.output_data_templates
            return {
                output_id: self._output(data, output_id, templates[output_id])
                for output_id in active_outputs(data.session)
            }
        except EmonetError as error:
            raise error.with_traceback(None) from None

    def _analyse(self, session: SessionManager) -> SessionRun:
        check_ids(session.input_data, session.output_data_templates, self.spec)
        wanted_ids = active_outputs(session)
        check_output_folders(session, wanted_ids)
        expression_ids = {i for i in wanted_ids if split_output_id(i)[0] == EXPRESSION_ID}
        check_declared_classes(session, expression_ids, list(self.predictor.classes.names))
        video = video_file(session.input_data)
        with contextlib.closing(MediaReader(video)) as probe:  # the frame size, for the boxes
            info = probe.info
        if info.is_image:
            raise InputError(
                f"{video}: the {self.spec.family} module analyses videos, not still images"
            )
        options = self.module_options
        box_source = box_source_for(session.input_data, info, options.detection())
        if box_source.detect is not None:
            log(
                f"emonet: the request has no {FACE_BOXES_ID} input: faces are found by "
                "emonet-cli's built-in BlazeFace detector (DISCOVER's blazeface defaults)"
            )
        elif options.max_faces > 1:
            log(
                "emonet: warning: max_faces counts detected faces: with a face_bb input its one "
                "face per frame is analysed"
            )
        wanted = {split_output_id(output_id)[0] for output_id in active_outputs(session)}
        people: dict[str | None, FrameResults] = {}
        frames = 0
        settings = options.settings(self.spec.crop)
        with contextlib.closing(Analysis(video, self.predictor, box_source, settings)) as analysis:
            for message in analysis.warnings():
                log(f"emonet: warning: {message}")
            for group in analysis.groups():
                frames += group.frames
                for batch in group.batches:
                    if batch.person not in people:
                        people[batch.person] = FrameResults(
                            info.fps, LANDMARKS_ID in wanted, EMBEDDING_ID in wanted
                        )
                    people[batch.person].add(batch)
            if frames and not people:  # several people asked for, none found: no face
                people[None] = FrameResults(
                    info.fps, LANDMARKS_ID in wanted, EMBEDDING_ID in wanted
                )
                for batch in analysis.catch_up(None):
                    people[None].add(batch)
        if frames == 0:
            raise InputError(f"{video}: no frame could be decoded")
        finished = {person: results.finish() for person, results in people.items()}
        main = max(finished, key=lambda person: int(finished[person].face.sum()))
        for person, results in finished.items():
            name = f"{person}: " if person else ""
            log(f"emonet: {name}{len(results)} frames, {int(results.face.sum())} with a face")
        if len(finished) > 1:
            log(f"emonet: the plain output ids are {main}'s, who has the most analysed frames")
        classes = self.predictor.classes
        return SessionRun(session, info, finished[main], classes, finished, self.spec)

    def _output(self, run: SessionRun, output_id: str, template: Any) -> Any:
        request = request_for(run.session, output_id)
        output_id, person = split_output_id(output_id)
        if person is not None:
            if person not in run.people:
                found = ", ".join(p for p in run.people if p) or "none"
                raise InputError(
                    f"output {request.get('id')!r}: no {person} in {run.info.path.name} "
                    f"(people found: {found}; the module option max_faces sets how many)"
                )
            run = replace(run, results=run.people[person])
        meta = {
            "role": request.get("role") or _meta(template, "role") or run.info.path.stem,
            "dataset": _meta(template, "dataset"),
            "session": _meta(template, "session"),
            "name": _meta(template, "name"),
        }
        if output_id == EXPRESSION_ID:
            return expression_annotation(run, request, template, meta)
        if output_id in DIMENSION_IDS:
            return dimension_annotation(run, output_id, request, template, meta)
        return feature_stream(run, output_id, meta)


class RbdmModule(EmoNetModule):
    """RBDM on a session's video, answering DISCOVER's rbdm request (`input_data`, `face_bb`
    -> `expression`, `valence`, `arousal`; option `batch_size`) through the same pipeline.
    Unlike DISCOVER's module, it writes the head's valence (its first output) as `valence`."""

    spec = RBDM_MODULE


def check_ids(
    inputs: Mapping[str, Any], outputs: Mapping[str, Any], spec: ModuleSpec = EMONET_MODULE
) -> None:
    """Refuse ids `spec`'s trainer does not know: a misspelt `face_bb` must not go unnoticed.
    Every trainer takes the video as `video` or `input_data`."""
    outputs = {split_output_id(output_id)[0]: None for output_id in outputs}
    known_outputs = spec.output_ids
    for kind, given, known in (("input", inputs, INPUT_IDS), ("output", outputs, known_outputs)):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise RequestError(
                f"unknown {kind} id {', '.join(unknown)}: the {spec.family} module's {kind}s "
                f"are {', '.join(known)}"
            )
    if not outputs:
        raise RequestError(f"the request names no output: give some of {', '.join(known_outputs)}")


def active_outputs(session: SessionManager) -> list[str]:
    """The outputs to compute: DISCOVER does not save those the request marks inactive."""
    return [
        output_id
        for output_id in session.output_data_templates
        if request_for(session, output_id).get("active", True)
    ]


def video_file(inputs: Mapping[str, Any]) -> Path:
    """The file of the session's video, given as `video` or `input_data`."""
    given = [video_id for video_id in (VIDEO_ID, *VIDEO_ALIASES) if video_id in inputs]
    if not given:
        raise RequestError(f"the request has no video: give it as input id {VIDEO_ID!r}")
    if len(given) > 1:
        raise RequestError(f"the request gives the video twice (as {' and '.join(given)})")
    video = inputs[given[0]]
    if not isinstance(video, Video):
        raise InputError(f"input {given[0]!r} is not a video stream ({type(video).__name__})")
    path = getattr(video.meta_data, "file_path", None)
    if path is None:
        raise InputError(f"input {given[0]!r}: the module needs the video as a file")
    return Path(path)


def request_for(session: SessionManager, data_id: str) -> dict:
    """The request's description of one input or output (its src, uri, scheme...)."""
    for description in session.data_description or []:
        if description.get("id") == data_id:
            return description
    return {}


def from_database(request: dict) -> bool:
    return "src" in request and parse_src_tag(request)[0] == Origin.DB


def _meta(data: Any, name: str) -> Any:
    return getattr(getattr(data, "meta_data", None), name, None)


def _scheme(template: Any) -> Any:
    return getattr(template, "annotation_scheme", None)


def expression_annotation(
    run: SessionRun, request: dict, template: Any, meta: dict
) -> DiscreteAnnotation:
    """One segment per frame, from its time to the next frame's; no face = NOVA's garbage id
    -1 with confidence 0; the scheme carries the class names and colours."""
    results = run.results
    names, colors = run.classes.names, run.classes.colors
    classes = {str(i): {"name": n, "color": c} for i, (n, c) in enumerate(zip(names, colors))}
    db_scheme = _scheme(template) if from_database(request) else None
    name = request.get("scheme") or getattr(db_scheme, "name", None) or EXPRESSION_SCHEME
    start, end = frame_segments(results.time, results.fps)
    rows = np.empty(len(results), dtype=DiscreteAnnotationScheme.label_dtype)
    rows["from"], rows["to"] = milliseconds(start), milliseconds(end)
    rows["id"] = results.expression
    rows["conf"] = results.expression_conf
    annotation = DiscreteAnnotation(
        scheme=DiscreteAnnotationScheme(name=name, classes=classes),
        data=rows,
        annotator=request.get("annotator") or _meta(template, "annotator") or run.spec.family,
        duration=int(rows["to"][-1]),
        **meta,
    )
    annotation.meta_data.description = f"{run.spec.model_name} ({run.classes.nclass} classes)"
    return annotation


def dimension_annotation(
    run: SessionRun, dimension: str, request: dict, template: Any, meta: dict
) -> ContinuousAnnotation:
    """Valence or arousal at the video's frame rate in -1..1, unless the request sets
    `sample_rate`, `min_val` or `max_val` (or NOVA's database scheme does)."""
    db_scheme = _scheme(template) if from_database(request) else None
    sample_rate = _positive(request, "sample_rate", getattr(db_scheme, "sample_rate", run.info.fps))
    low = _request_number(request, "min_val", getattr(db_scheme, "min_val", -1.0))
    high = _request_number(request, "max_val", getattr(db_scheme, "max_val", 1.0))
    if not low < high:
        raise RequestError(f"output {dimension!r}: min_val {low:g} is not below max_val {high:g}")
    name = request.get("scheme") or getattr(db_scheme, "name", None) or dimension
    score, conf = dimension_samples(run.results, dimension, sample_rate)
    rows = np.empty(len(score), dtype=ContinuousAnnotationScheme.label_dtype)
    rows["score"], rows["conf"] = score, conf
    scheme = ContinuousAnnotationScheme(
        name=name, sample_rate=sample_rate, min_val=low, max_val=high
    )
    return ContinuousAnnotation(
        scheme=scheme,
        data=rows,
        annotator=request.get("annotator") or _meta(template, "annotator") or run.spec.family,
        duration=int(round(len(rows) / sample_rate * 1000)),
        **meta,
    )


def feature_stream(run: SessionRun, output_id: str, meta: dict) -> SSIStream:
    """The `landmarks` (x, y of 68 points in frame pixels) or `embedding` (256 features)
    stream at the video's frame rate; NaN rows without a face."""
    values = run.results.landmarks if output_id == LANDMARKS_ID else run.results.embedding
    labels = None
    if output_id == LANDMARKS_ID:
        labels = [{"id": i, "name": f"{'xy'[i % 2]}{i // 2}"} for i in range(values.shape[1])]
    return SSIStream(
        data=np.ascontiguousarray(values, dtype=np.float32),
        sample_rate=run.info.fps,
        dim_labels=labels,
        media_type=STREAM_MEDIA_TYPES[output_id],
        custom_meta={"size": f"{run.info.width}:{run.info.height}"},
        **meta,
    )


def _request_number(request: dict, key: str, default: float) -> float:
    """`key` of the request, else `default` (e.g. from NOVA's database scheme); either must be
    a finite number."""
    given = request.get(key)
    try:
        value = float(default if given in (None, "") else given)
    except (TypeError, ValueError):
        raise RequestError(
            f"output {request.get('id')!r}: {key} {given!r} is not a number"
        ) from None
    if not np.isfinite(value):
        raise RequestError(f"output {request.get('id')!r}: {key} must be finite, not {value:g}")
    return value


def _positive(request: dict, key: str, default: float) -> float:
    value = _request_number(request, key, default)
    if value <= 0:
        raise RequestError(f"output {request.get('id')!r}: {key} must be above 0, not {value:g}")
    return value
