"""``screen``: photographs in, a screening folder out, resumable and safe to kill.

The output folder (documented in docs/usage.md)::

    results/<id>.json           one ImageResult per photograph (the JSON Schema is schema.json)
    previews/<id>.jpg           the photograph at display size
    overlays/<kind>/<id>.png    RGBA layers: lesions, disc (optic disc, fovea, macula), saliency
    results.csv                 one row per photograph of this run (RESULT_COLUMNS)
    patients.csv                one row per patient visit (PATIENT_COLUMNS)
    errors.csv                  inputs that could not be screened: file, reason, message
    report.html                 the self-contained report
    schema.json, run.json       the result schema; this run's settings and counts

Every file is written to a temporary name and renamed into place, and an image's JSON is
written after its preview and overlays, so a JSON that exists is complete. A rerun of the same
command (after a crash, ``kill -9``, or with inputs added or changed) screens only the inputs
whose JSON is missing or was made from other content (SHA-256) or other settings
(``Screener.settings_key``); the tables and the report are rebuilt from the JSONs at the end.
Writing happens on a separate thread so that the model does not wait on the disk.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from drscreen._version import __version__
from drscreen.report.overlays import DISPLAY_SIZE, overlay_layers, preview
from drscreen.screening import (
    DEFAULT_LESION_MODEL,
    ImageResult,
    PatientResult,
    ScreenedImage,
    Screener,
    ScreeningFailure,
    ScreeningInput,
    collect_inputs,
    content_sha256,
    image_result_json_schema,
    patient_results,
)

#: Exit status of ``drscreen screen`` when some inputs could not be screened (0: all screened).
EXIT_SOME_FAILED = 3
#: Writes queued at most, so that memory stays bounded when the disk is slower than the model.
MAX_PENDING_WRITES = 16

RESULT_COLUMNS: tuple[str, ...] = (
    "id", "source", "patient_id", "laterality", "laterality_source", "visit", "field", "status",
    "quality_reasons", "dr_grade", *(f"dr_prob_{g}" for g in range(5)), "dme_grade",
    *(f"dme_prob_{g}" for g in range(3)), "referable_score", "referable", "threshold",
    "n_MA", "n_HE", "n_EX", "n_SE", "fovea_confidence", "explanation_method", "warnings",
    "content_sha256", "model_name", "model_version", "settings_key",
)  # fmt: skip
PATIENT_COLUMNS: tuple[str, ...] = ("patient_id", "visit", "recommendation", "reason", "eyes", "image_ids")
ERROR_COLUMNS: tuple[str, ...] = ("file", "reason", "message")


@dataclass
class RunSummary:
    """What a ``screen`` run did. ``exit_code``: 0 when every input was screened, else 3."""

    out_dir: Path
    n_inputs: int
    n_screened: int = 0
    n_ungradable: int = 0
    n_unreadable: int = 0
    n_referable: int = 0
    n_reused: int = 0
    report: Path | None = None
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    unreadable: list[ScreeningInput] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.n_unreadable else 0


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _encode(image: np.ndarray, extension: str) -> bytes:
    """PNG/JPEG bytes of an RGB(A) uint8 image (a PNG indexed when ``_indexed_png`` can)."""
    indexed = _indexed_png(image) if extension == ".png" else None
    if indexed is not None:
        return indexed
    converted = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(extension, converted, [cv2.IMWRITE_JPEG_QUALITY, 90] if extension == ".jpg" else [])
    if not ok:
        raise OSError(f"could not encode a {extension} image")
    return buffer.tobytes()


def _indexed_png(image: np.ndarray) -> bytes | None:
    """Indexed-colour PNG bytes of an (H, W, 4) uint8 RGBA layer whose pixels are either
    (0, 0, 0, 0) or opaque in at most 255 colours (the lesion and disc layers), else None.

    Decodes to the same RGBA pixels as an RGBA PNG, at a quarter of the data to compress: several
    times faster to write than OpenCV's RGBA PNG at its fastest setting, and smaller.
    """
    if image.ndim != 3 or image.shape[2] != 4 or not image.flags.c_contiguous:
        return None
    packed = image.view(np.uint32)[..., 0]
    drawn = packed != 0
    if not (image[..., 3][drawn] == 255).all():
        return None
    colours, index = np.unique(packed[drawn], return_inverse=True)
    if len(colours) > 255:
        return None
    indexed = np.zeros(packed.shape, np.uint8)
    indexed[drawn] = index + 1
    palette = np.zeros((len(colours) + 1, 4), np.uint8)
    palette[1:] = colours.view(np.uint8).reshape(-1, 4)
    layer = Image.fromarray(indexed, "P")
    layer.putpalette(palette[:, :3].tobytes())
    buffer = io.BytesIO()
    layer.save(buffer, format="PNG", compress_level=1, transparency=0)
    return buffer.getvalue()


class ScreeningFolder:
    """The output folder of a screening run: paths, stored results, and the image writer."""

    def __init__(self, out_dir: str | Path, overlay_size: int | None = DISPLAY_SIZE, *, clean: bool = True) -> None:
        """``clean``: remove a killed run's unfinished temporary files (only safe while no other
        process writes into the folder)."""
        self.root = Path(out_dir)
        self.overlay_size = overlay_size
        for sub in ("results", "previews", "overlays"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if clean:
            for leftover in self.root.rglob(".*.tmp"):
                leftover.unlink(missing_ok=True)

    def result_path(self, image_id: str) -> Path:
        return self.root / "results" / f"{image_id}.json"

    def stored(self, image_id: str) -> ImageResult | None:
        """The stored result of ``image_id``, or None when absent or unreadable (then redone)."""
        path = self.result_path(image_id)
        try:
            return ImageResult.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            return None

    def write_image(self, screened: ScreenedImage, threshold: float) -> ImageResult:
        """Write the preview, the overlay layers and then the JSON of one screened photograph."""
        image_id = screened.result.id
        relative: dict[str, str] = {}
        atomic_write_bytes(self.root / "previews" / f"{image_id}.jpg", _encode(preview(screened, self.overlay_size), ".jpg"))
        for kind, layer in overlay_layers(screened, threshold, self.overlay_size).items():
            path = Path("overlays") / kind / f"{image_id}.png"
            atomic_write_bytes(self.root / path, _encode(layer, ".png"))
            relative[kind] = path.as_posix()
        result = screened.result.model_copy(update={"overlays": relative})
        atomic_write_bytes(self.result_path(image_id), result.model_dump_json(indent=1).encode())
        return result

    def forget(self, image_id: str) -> None:
        """Remove what an earlier run stored for ``image_id`` (its input is now unreadable)."""
        self.result_path(image_id).unlink(missing_ok=True)

    def write_tables(
        self, results: Sequence[ImageResult], patients: Sequence[PatientResult], errors: Sequence[tuple[str, str, str]]
    ) -> None:
        """results.csv, patients.csv and errors.csv."""
        self._write_csv("results.csv", RESULT_COLUMNS, [result_row(r) for r in results])
        self._write_csv("patients.csv", PATIENT_COLUMNS, [patient_row(p) for p in patients])
        self._write_csv("errors.csv", ERROR_COLUMNS, [dict(zip(ERROR_COLUMNS, e)) for e in errors])

    def _write_csv(self, name: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.root / name, text.getvalue().encode("utf-8"))

    def write_json(self, name: str, data: Any) -> None:
        atomic_write_bytes(self.root / name, json.dumps(data, indent=1, default=str).encode())


def result_row(result: ImageResult) -> dict[str, Any]:
    """The ``results.csv`` row of one result (empty cells where a value does not exist)."""
    counts = {f"n_{code}": 0 for code in ("MA", "HE", "EX", "SE")}
    for finding in result.lesions:
        if f"n_{finding.code}" in counts:
            counts[f"n_{finding.code}"] += finding.count
    dr, dme, referable = result.dr, result.dme, result.referable
    row: dict[str, Any] = {
        "id": result.id, "source": result.source or "", "patient_id": result.patient_id or "",
        "laterality": result.laterality or "", "laterality_source": result.laterality_source or "",
        "visit": result.visit or "", "field": result.field or "", "status": result.status,
        "quality_reasons": ";".join(result.quality.reasons),
        "dr_grade": "" if dr is None else dr.grade, "dme_grade": "" if dme is None else dme.grade,
        "referable_score": "" if referable is None else f"{referable.score:.6f}",
        "referable": "" if referable is None else int(referable.referable),
        "threshold": "" if referable is None else referable.threshold,
        **(counts if result.status == "screened" else dict.fromkeys(counts, "")),
        "fovea_confidence": "" if result.landmarks is None else result.landmarks.fovea_confidence,
        "explanation_method": "" if result.explanation is None else result.explanation.method,
        "warnings": " | ".join(result.warnings), "content_sha256": result.content_sha256,
        "model_name": result.provenance.model_name, "model_version": result.provenance.model_version or "",
        "settings_key": result.provenance.settings_key,
    }  # fmt: skip
    for name, grade, size in (("dr", dr, 5), ("dme", dme, 3)):
        for g in range(size):
            row[f"{name}_prob_{g}"] = "" if grade is None else f"{grade.probabilities[g]:.6f}"
    return row


def patient_row(patient: PatientResult) -> dict[str, Any]:
    """The ``patients.csv`` row of one patient visit."""
    eyes = []
    for eye in patient.eyes:
        if eye.status == "ungradable":
            eyes.append(f"{eye.laterality}: ungradable")
        else:
            eyes.append(f"{eye.laterality}: DR {eye.dr_grade}" + ("" if eye.dme_grade is None else f", DME {eye.dme_grade}")
                        + (", referable" if eye.referable else ""))  # fmt: skip
    return {
        "patient_id": patient.patient_id, "visit": patient.visit or "", "recommendation": patient.recommendation,
        "reason": patient.reason, "eyes": "; ".join(eyes),
        "image_ids": ";".join(i for eye in patient.eyes for i in eye.image_ids),
    }  # fmt: skip


def screen(
    inputs: Iterable[Any] | str | Path,
    out_dir: str | Path,
    *,
    model: str | Path | None = None,
    operating_point: str | None = None,
    explain: bool = True,
    labels: str | Path | None = None,
    device: str = "cpu",
    amp: str = "fp32",
    batch_size: int = 8,
    overlay_size: int | None = DISPLAY_SIZE,
    progress: bool = True,
    screener: Screener | None = None,
    workers: int | None = None,
    runtime: str = "torch",
    command: str | None = None,
    shard: bool = False,
    lesion_model: str | Path | None = DEFAULT_LESION_MODEL,
    channels_last: bool = False,
    jpeg_decode: str = "auto",
) -> RunSummary:
    """Screen ``inputs`` (files, folders, CSV manifests, DICOM, arrays, PIL images; see
    ``drscreen.screening.collect_inputs``) into the folder ``out_dir``; returns what happened.

    ``labels``: a CSV of reference grades (``id``, ``dr_grade``, optional ``dme_grade``) for the
    report's metrics. ``overlay_size``: long side of previews and overlays (None: full resolution).
    ``workers``: processes that read and prepare photographs (``Screener.screen``; None: default).
    ``runtime``: ``"torch"`` or ``"onnx"`` (``Screener``). ``lesion_model``: the lesion model
    (``Screener``: ``"default"``, the shipped one; a packed file; None: the grading model's maps).
    ``channels_last``, ``jpeg_decode``: as ``Screener`` (memory format; where JPEG files are
    decoded). ``shard``: this call is one of several processes writing into the folder at once
    (``torchrun``): it neither cleans up temporary files nor writes the tables and the report,
    which one final call over all inputs does.
    Unreadable inputs get one line on stderr and a row in ``errors.csv``; the run goes on.
    """
    started = time.time()
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    records = list(collect_inputs(items))
    folder = ScreeningFolder(out_dir, overlay_size, clean=not shard)
    screener = screener or Screener(
        model, operating_point=operating_point, explain=explain, device=device, amp=amp, batch_size=batch_size,
        runtime=runtime, lesion_model=lesion_model, channels_last=channels_last, jpeg_decode=jpeg_decode,
    )
    summary = RunSummary(out_dir=folder.root, n_inputs=len(records))
    todo, reused = _split_done(records, folder, screener)
    summary.n_reused = len(reused)
    results: dict[str, ImageResult] = dict(reused)
    bar = tqdm(total=len(records), initial=len(reused), desc="screening", unit="photo", disable=not progress,
               dynamic_ncols=True)  # fmt: skip
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drscreen-writer") as writer:
        pending: list[Future[ImageResult]] = []
        for outcome in screener.screen(todo, workers=workers, display_size=overlay_size):
            if isinstance(outcome, ScreeningFailure):
                _report_failure(outcome, folder, summary)
            else:
                pending.append(writer.submit(folder.write_image, outcome, screener.lesion_threshold))
            while len(pending) > MAX_PENDING_WRITES or (pending and pending[0].done()):
                written = pending.pop(0).result()
                results[written.id] = written
            bar.update(1)
        for future in pending:
            written = future.result()
            results[written.id] = written
    bar.close()
    ordered = [results[r.id] for r in records if r.id in results]
    if shard:
        return summary
    summary.n_screened = sum(r.status == "screened" for r in ordered)
    summary.n_ungradable = sum(r.status == "ungradable" for r in ordered)
    summary.n_referable = sum(r.referable is not None and r.referable.referable for r in ordered)
    patients = patient_results(ordered, summary.unreadable)
    folder.write_tables(ordered, patients, summary.errors)
    folder.write_json("schema.json", image_result_json_schema())
    run_info = _run_info(screener, summary, command, time.time() - started)
    folder.write_json("run.json", run_info)
    summary.report = _write_report(folder, ordered, patients, summary.errors, run_info, labels)
    return summary


def _split_done(
    records: Sequence[ScreeningInput], folder: ScreeningFolder, screener: Screener
) -> tuple[list[ScreeningInput], dict[str, ImageResult]]:
    """(inputs to screen, id -> stored result that is still valid for its content and settings)."""
    todo: list[ScreeningInput] = []
    reused: dict[str, ImageResult] = {}
    for record in records:
        stored = folder.stored(record.id)
        if stored is not None and stored.provenance.settings_key == screener.settings_key:
            try:
                if content_sha256(record) == stored.content_sha256:
                    reused[record.id] = stored
                    continue
            except OSError:
                pass
        todo.append(record)
    return todo, reused


def _report_failure(failure: ScreeningFailure, folder: ScreeningFolder, summary: RunSummary) -> None:
    name = str(failure.input.path) if failure.input.path is not None else failure.input.id
    summary.n_unreadable += 1
    summary.errors.append((name, failure.code, failure.message))
    summary.unreadable.append(failure.input)
    folder.forget(failure.input.id)
    print(f"drscreen screen: {name}: {failure.message} [{failure.code}]", file=sys.stderr)


def _run_info(screener: Screener, summary: RunSummary, command: str | None, seconds: float) -> dict[str, Any]:
    return {
        "drscreen_version": __version__,
        "command": command,
        "model_name": screener.model_name,
        "model_version": screener.model_version,
        "weights_sha256": screener.weights_sha256,
        "settings": screener.settings,
        "settings_key": screener.settings_key,
        "preprocess": screener.preprocess,
        "validated_on_real_data": screener.validated,
        "counts": {
            "inputs": summary.n_inputs, "screened": summary.n_screened, "ungradable": summary.n_ungradable,
            "unreadable": summary.n_unreadable, "referable": summary.n_referable, "reused": summary.n_reused,
        },  # fmt: skip
        "seconds": round(seconds, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _write_report(
    folder: ScreeningFolder,
    results: list[ImageResult],
    patients: list[PatientResult],
    errors: list[tuple[str, str, str]],
    run_info: dict[str, Any],
    labels: str | Path | None,
) -> Path:
    from drscreen.report.html import write_html_report
    from drscreen.report.labels import read_labels

    return write_html_report(
        folder.root, results, patients, errors, run_info, labels=None if labels is None else read_labels(Path(labels))
    )


def iter_results(out_dir: str | Path) -> Iterator[ImageResult]:
    """Every stored result of a screening folder, in file-name order."""
    for path in sorted((Path(out_dir) / "results").glob("*.json")):
        yield ImageResult.model_validate_json(path.read_bytes())
