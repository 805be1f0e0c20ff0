"""One input analysed and written: the Analysis chain's results into every output file, one
set per person when the source has several, and the summary JSON last."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from emonet_cli.analysis.detected import described_people
from emonet_cli.analysis.pipeline import Analysis, AnalysisSettings, ResultGroup
from emonet_cli.constants import Classes
from emonet_cli.errors import InputError
from emonet_cli.faces import BoxSource
from emonet_cli.faces.detection.boxstream import KEYPOINT_SUFFIX, keypoint_stream_path
from emonet_cli.faces.face import face_id
from emonet_cli.faces.people import People
from emonet_cli.formats.fileio import part_files_listed_once, remove_partial_files
from emonet_cli.formats.leftovers import earlier_outputs, person_results, remove_leftovers
from emonet_cli.media.frames import MediaInfo
from emonet_cli.media.video import FrameSelection
from emonet_cli.models.predictions import Predictor
from emonet_cli.models.registry import DEFAULT_FAMILY, FAMILIES, ModelFamily
from emonet_cli.outputs.context import close_all
from emonet_cli.outputs.results import ResultBatch, Summary
from emonet_cli.outputs.writers import (
    BOX_STREAM_OUTPUT,
    FACES_SUFFIX,
    FacesCsvWriter,
    OutputOptions,
    ResultWriter,
    WriterContext,
    family_outputs,
    input_identity,
    open_writers,
    output_path,
    planned_outputs,
    summary_path,
    write_json,
)


@dataclass
class AnalysisReport:
    input: Path
    outputs: list[Path]
    summary: dict
    warnings: list[str]
    # The people identity described: (name, descriptors) each, for --save-people
    described: list = field(default_factory=list)


class PeopleWriters:
    """The output writers of one input: one set per person, opened when the person first
    appears, and with several people the `S.faces.csv` overview."""

    def __init__(
        self,
        info: MediaInfo,
        nclass: int,
        options: OutputOptions,
        several: bool,
        selection: FrameSelection | None = None,
        classes: Classes | None = None,
    ):
        self.info, self.nclass, self.options = info, nclass, options
        self.selection = selection
        self.classes = classes or Classes.default(nclass)  # names and colours
        self.sets: dict[str | None, list[ResultWriter]] = {}
        self.summaries: dict[str | None, Summary] = {}
        self.faces: FacesCsvWriter | None = None
        if several:
            faces_path = output_path(info.path, options.directory, FACES_SUFFIX)
            _remove_stale(faces_path)
            self.faces = FacesCsvWriter(faces_path)
        else:  # the one person's files exist even without a face
            self.sets[None] = self._open(None)
            self.summaries[None] = Summary(self.classes.names, options.model.categories)

    def add(self, group: ResultGroup) -> None:
        for batch in group.batches:
            if batch.person not in self.sets:
                self.sets[batch.person] = self._open(batch.person)
                self.summaries[batch.person] = Summary(
                    self.classes.names, self.options.model.categories
                )
            for writer in self.sets[batch.person]:
                writer.add(batch)
            self.summaries[batch.person].add(batch)
        if self.faces is not None:
            self._add_faces(group.batches)

    def _open(self, person: str | None) -> list[ResultWriter]:
        for planned in planned_outputs(self.info.path, self.options, person)[:-1]:
            _remove_stale(planned)
        path = self.info.path
        role = path.stem if person is None else f"{path.stem}.{person}"
        model = self.options.model
        what = model.title.split(",")[0] + (f" ({self.nclass} classes)" if self.nclass else "")
        meta = {
            "role": role,
            "annotator": "emonet",
            "description": f"{what} on {path.name}" + (f", {person}" if person else ""),
        }
        context = WriterContext(
            self.info, self.nclass, self.options, meta, self.selection, person, self.classes
        )
        return open_writers(context)

    def _add_faces(self, batches: list[ResultBatch]) -> None:
        analysed = [batch for batch in batches if batch.face.any()]
        if not analysed:
            return
        self.faces.add(
            np.concatenate([b.frame[b.face] for b in analysed]),
            np.concatenate([b.time[b.face] for b in analysed]),
            np.concatenate([np.full(int(b.face.sum()), b.person, dtype=object) for b in analysed]),
            np.concatenate([b.box[b.face] for b in analysed]),
            np.concatenate([b.face_conf[b.face] for b in analysed]),
            np.concatenate([_distances(b)[b.face] for b in analysed]),
        )

    @property
    def writers(self) -> list:
        everything = [w for writers in self.sets.values() for w in writers]
        return [*everything, self.faces] if self.faces is not None else everything

    def close(self) -> None:
        close_all(self.writers)

    def abort(self) -> None:
        for writer in self.writers:
            writer.abort()

    def totals(self) -> dict:
        """The summary JSON's part about the results: of the one person, or per person."""
        if self.faces is None:
            return self.summaries[None].totals()
        return {
            "people": [
                {"person": person, **summary.totals(), "outputs": _paths(self.sets[person])}
                for person, summary in sorted(self.summaries.items(), key=_by_face_id)
            ]
        }


def _categories(model: ModelFamily, predictor: Predictor) -> dict:
    """A family's categories, their thresholds and its own VAD scale, for the summary."""
    if not model.categories:
        return {}
    document = {
        "categories": list(model.categories),
        "category_thresholds": [float(t) for t in predictor.thresholds],
    }
    if model.native_scale is not None:
        document["native_scale"] = list(model.native_scale)
    return document


# Detection settings that change where the network runs but not the boxes it finds.
RUN_PLACE = ("device", "batch_size")


def asked_record(
    predictor: Predictor | None,
    provenance: dict | None,
    settings: AnalysisSettings,
    box_source: BoxSource,
    family: str,
) -> dict:
    """What a summary records of the choices that change the results: the model, its weights
    (SHA-256) and classes, the precision, the face options and the boxes, under the keys
    of the summary (whose `detector` is compared without RUN_PLACE). `--skip-existing`
    takes results as done only when their summary records exactly this. Without a
    `predictor` (its weights are not here), what the model itself records is left out."""
    detector = box_source.detect.provenance() if box_source.detect else None
    model = {"model": family}
    if predictor is not None:
        model |= {
            "nclass": predictor.nclass,
            "weights_sha256": (provenance or {}).get("weights_sha256"),
            "precision": predictor.precision,
        }
    return {
        **model,
        "min_face_conf": settings.min_face_conf,
        "smooth": settings.smooth,
        "usable_limits": settings.usable.as_dict(),
        "boxes": box_source.describe(),
        "box_kind": box_source.kind,
        "detector": None
        if detector is None
        else {k: v for k, v in detector.items() if k not in RUN_PLACE},
    }


def _distances(batch: ResultBatch) -> np.ndarray:
    if batch.identity_distance is None:
        return np.full(len(batch), np.nan, dtype=np.float32)
    return batch.identity_distance


def _by_face_id(item: tuple) -> int:
    return face_id(item[0])


def _paths(writers: list) -> list[str]:
    return [str(p) for writer in writers for p in writer.paths]


def _remove_earlier_results(
    path: Path, options: OutputOptions, box_source: BoxSource, writers: PeopleWriters
) -> None:
    """Once this run's files are published, those of an earlier run of the same input that
    this run did not write (people it no longer has, outputs it was not asked for): the
    folder then describes this run only (see formats/leftovers.py for what is never touched)."""
    summary = summary_path(path, options.directory)
    # The names of results (any family's outputs); the only names ever removed.
    results = {o.suffix for f in FAMILIES.values() for o in family_outputs(f)}
    detected = {BOX_STREAM_OUTPUT.suffix, KEYPOINT_SUFFIX + BOX_STREAM_OUTPUT.suffix}
    # Box streams found on disk are people's results only when this run detects (else they
    # may be a user's box files); those the earlier summary lists, its detector wrote.
    suffixes = results | detected if options.box_stream else results - detected
    gallery = _gallery_names(box_source)
    candidates = [
        *earlier_outputs(summary, path.stem, results | detected, gallery),
        *person_results(summary.parent, path.stem, suffixes, gallery),
    ]
    box_files = [*getattr(box_source, "paths", ()), getattr(box_source, "path", None)]
    box_files = [Path(p) for p in box_files if p is not None]
    inputs = [path, *box_files, *(keypoint_stream_path(p) for p in box_files)]
    written = [Path(p) for writer in writers.writers for p in writer.paths]
    remove_leftovers(candidates, written, inputs)


def _gallery_names(box_source: BoxSource) -> tuple[str, ...]:
    gallery = box_source.detect.gallery if box_source.detect is not None else None
    return () if gallery is None else gallery.names


def _remove_stale(path: Path) -> None:
    """Part files of `path` left by a run that was killed outright (never a live one's)."""
    for name in (path, path.with_name(path.name + "~")):
        remove_partial_files(name)


def outputs_of(
    options: OutputOptions, box_source: BoxSource, predictor: Predictor | None = None
) -> OutputOptions:
    """What an analysis of one input writes: detected faces are also written as a box stream,
    so that the analysis can be repeated; the predictor's family (else the options') decides
    which results there are to write."""
    family = options.family if predictor is None else getattr(predictor, "family", DEFAULT_FAMILY)
    return replace(options, box_stream=box_source.detect is not None, family=family)


@part_files_listed_once()  # its folder is read once, not once per file written
def analyze_file(
    path: str | Path,
    predictor: Predictor,
    box_source: BoxSource,
    settings: AnalysisSettings | None = None,
    options: OutputOptions | None = None,
    provenance: dict | None = None,
    on_start: Callable[[MediaInfo], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> AnalysisReport:
    """Analyse one video or image and write its outputs; returns what was written.

    `provenance` (weights file and SHA-256, tool version...) goes into the summary JSON as is.
    The callbacks let a front end show progress: `on_start` with the media's info, `on_batch`
    with the number of frames done in each batch.
    """
    started = time.perf_counter()
    path = Path(path)
    settings = settings or AnalysisSettings()
    options = outputs_of(options or OutputOptions(), box_source, predictor)
    # closing() releases the decoder on every way out, errors in the set-up included.
    with contextlib.closing(Analysis(path, predictor, box_source, settings)) as analysis:
        info = analysis.info
        nclass = predictor.nclass
        warnings = analysis.warnings()
        for message in warnings:
            if on_warning is not None:
                on_warning(message)
        if on_start is not None:
            on_start(info)
        writers = PeopleWriters(
            info, nclass, options, analysis.several, settings.selection, predictor.classes
        )
        frames = frames_with_face = 0
        try:
            for group in analysis.groups():
                writers.add(group)
                frames += group.frames
                frames_with_face += group.frames_with_face
                if on_batch is not None:
                    on_batch(group.frames)
            if frames == 0:
                raise InputError(f"{path}: no frame could be decoded")
            mismatch = analysis.reader.count_mismatch()
            if mismatch is not None:
                warnings = [*warnings, mismatch]
                if on_warning is not None:
                    on_warning(mismatch)
            writers.close()
        except BaseException:
            writers.abort()
            raise
    _remove_earlier_results(path, options, box_source, writers)

    totals = writers.totals()
    identity = _with_identity(totals, analysis.people)
    document = {
        "input": str(path),
        "input_file": input_identity(path),
        **(provenance or {}),
        "model": options.family,
        "nclass": nclass,
        "classes": list(predictor.classes.names),
        **_categories(options.model, predictor),
        "precision": predictor.precision,
        "device": str(predictor.device),
        "batch_size": settings.batch_size,
        "min_face_conf": settings.min_face_conf,
        "smooth": settings.smooth,
        "usable_limits": settings.usable.as_dict(),
        **({"selection": settings.selection.as_dict()} if settings.selection else {}),
        "boxes": box_source.describe(),
        "box_kind": box_source.kind,
        "media": {
            "width": info.width,
            "height": info.height,
            "fps": info.fps,
            "is_image": info.is_image,
            **({"rotated_clockwise": info.rotated_clockwise} if info.rotated_clockwise else {}),
        },
        **({"detector": box_source.detect.provenance()} if box_source.detect else {}),
        "frames": frames,
        "frames_with_face": frames_with_face,
        **totals,
        **({"identity": identity} if identity is not None else {}),
        "warnings": warnings,
        "outputs": _paths(writers.writers),
        "seconds": round(time.perf_counter() - started, 3),
    }
    json_path = write_json(summary_path(path, options.directory), document)
    described = described_people(analysis.people, path.stem)
    return AnalysisReport(path, [*document["outputs"], json_path], document, warnings, described)


def _with_identity(totals: dict, people: People) -> dict | None:
    """Each person of `totals` with their number and what identity did for them; the
    summary's `identity` (cuts found, the gallery), None without identity."""
    report = people.identity_report()
    for entry in totals.get("people", []):
        entry["number"] = face_id(entry["person"])
        if report is not None:
            entry["identity"] = report["people"].get(entry["person"])
    if report is None:
        return None
    return {"cuts": report["cuts"], "gallery": report["gallery"]}
