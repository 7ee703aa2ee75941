"""``report.html``: one self-contained page for the clinician or reviewer of a screening run.

Everything the page needs travels inside it: CSS and JS inline, photographs and overlays as
base64 data URIs (downscaled to ``EMBED_PX``), charts as inline SVG. Past ``max_embedded_images``
the referable and ungradable images are embedded first and the rest point at their files in the
output folder (relative paths, so the folder still opens offline).

The page only shows what the results hold: it computes no probability. With reference labels it
scores the stored grades and referable scores (``drscreen.metrics``).
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from PIL import Image

from drscreen.grading import (
    DME_GRADE_NAMES,
    DR_GRADE_NAMES,
    GRADE_DECODINGS,
    LESION_BY_CODE,
    REFERABLE_DME_MIN,
    REFERABLE_DR_MIN,
    SEGMENTATION_LESIONS,
    lesion_color,
    referable_labels,
)
from drscreen.metrics import grading_metrics, score_referable
from drscreen.report.labels import LabelRow
from drscreen.screening.schema import RESEARCH_NOTICE, SCHEMA_VERSION, ImageResult, PatientResult

#: Long side, px, of the photographs and overlays embedded in the page.
EMBED_PX = 512
#: File name of the report inside the output folder.
REPORT_NAME = "report.html"
#: Bootstrap resamples of the metric intervals.
N_BOOTSTRAP = 1000

#: Overlay kinds in display order: kind -> checkbox label.
OVERLAY_LABELS: dict[str, str] = {
    "lesions": "Lesions",
    "disc": "Optic disc + fovea",
    "saliency": "Saliency",
}
#: Overlays shown when the page opens.
OVERLAYS_ON_AT_START: frozenset[str] = frozenset({"lesions", "disc"})

#: Recommendation -> (headline, CSS class), most urgent first (the page's patient order).
RECOMMENDATIONS: dict[str, tuple[str, str]] = {
    "refer": ("Refer", "refer"),
    "retake_or_refer": ("Retake photograph or refer", "retake"),
    "rescreen_12_months": ("Rescreen in 12 months", "rescreen"),
}

#: Quality-gate reason codes (``drscreen.preprocess.QualityIssue`` values) in words.
QUALITY_REASONS: dict[str, str] = {
    "blank": "blank or uniform image",
    "noise": "noise, not a photograph",
    "greyscale": "greyscale, not a colour fundus photograph",
    "not_fundus": "not recognised as a fundus photograph",
    "too_dark": "too dark",
    "overexposed": "overexposed",
    "channel_saturated": "a colour channel is saturated",
    "too_blurry": "too blurry",
    "fov_too_small": "field of view too small",
}

#: Output names of ``ImageResult.validated_on_real_data`` in words.
OUTPUT_NAMES: dict[str, str] = {
    "dr": "DR grade",
    "referable": "Referable disease",
    "dme": "DME risk",
    "lesion_maps": "Lesion maps and region findings",
    "optic_disc": "Optic disc",
    "explanation": "Explanation map",
}

#: Region names of ``LesionFinding.region`` in words, in table order.
REGION_NAMES: dict[str, str] = {"optic_disc": "Optic disc", "macula": "Macula", "rest": "Rest of field", "all": "All"}

#: Bar colours of the DR grades, none to proliferative.
GRADE_COLORS: tuple[str, ...] = ("#3f8f5a", "#93b84a", "#e0a526", "#d9692b", "#b8322f")


@dataclass(frozen=True)
class OverlayView:
    """One overlay layer of an image card."""

    kind: str
    label: str
    src: str
    on: bool


@dataclass(frozen=True)
class FindingsTable:
    """Lesion x region counts and areas of one image: one row ``(code, name, CSS colour, cells)`` per
    lesion, a cell ``(count, area_px)`` per region of ``regions`` (None where not reported)."""

    regions: list[str]
    rows: list[tuple[str, str, str, list[tuple[int, float] | None]]]
    disc_area_px: float | None
    validated: bool

    @property
    def lesion_count(self) -> int:
        return sum(cell[0] for _, _, _, cells in self.rows for cell in cells if cell is not None)


@dataclass
class ImageView:
    """Everything the template shows for one image."""

    result: ImageResult
    anchor: str
    preview_src: str | None = None
    overlays: list[OverlayView] = field(default_factory=list)
    embedded: bool = True
    label: LabelRow | None = None
    findings: FindingsTable | None = None
    quality_reasons: list[str] = field(default_factory=list)

    @property
    def referable(self) -> bool:
        return self.result.referable is not None and self.result.referable.referable

    @property
    def ungradable(self) -> bool:
        return self.result.status == "ungradable"


@dataclass
class PatientView:
    """One patient visit and its images."""

    patient: PatientResult | None
    images: list[ImageView]
    headline: str
    css: str


def _downscaled(path: Path, mode: str) -> Image.Image:
    """The image at ``path`` in ``mode``, its long side at most ``EMBED_PX`` (alpha premultiplied;
    an indexed-colour overlay is expanded to RGBA first)."""
    with Image.open(path) as source:
        image = source.convert("RGBA").convert("RGBa") if mode == "RGBA" else source.convert(mode)
    scale = EMBED_PX / max(image.size)
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image.convert(mode)


def _data_uri(image: Image.Image, fmt: str, mime: str, **options: Any) -> str:
    """``image`` encoded as ``fmt`` in a base64 data URI."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def embed_preview(path: Path) -> str:
    """A photograph as a JPEG data URI, downscaled to ``EMBED_PX``."""
    return _data_uri(_downscaled(path, "RGB"), "JPEG", "image/jpeg", quality=85, optimize=True)


def embed_overlay(path: Path, kind: str) -> str:
    """An RGBA overlay as a WebP data URI, downscaled to ``EMBED_PX``: lossless for the lesion
    and disc drawings (small lesions keep their pixels), lossy for the smooth saliency map."""
    image = _downscaled(path, "RGBA")
    if kind == "saliency":
        return _data_uri(image, "WEBP", "image/webp", quality=80)
    return _data_uri(image, "WEBP", "image/webp", lossless=True)


def _relative_src(relative: str) -> str:
    """A path relative to the output folder as a URL-quoted ``src``."""
    return quote(Path(relative).as_posix())


def _findings_table(result: ImageResult) -> FindingsTable | None:
    lesions = [f for f in result.lesions if f.code in SEGMENTATION_LESIONS]
    disc = [f for f in result.lesions if f.code == "OD"]
    if not lesions and not disc:
        return None
    regions = [r for r in REGION_NAMES if any(f.region == r for f in lesions)]
    rows = []
    for code in SEGMENTATION_LESIONS:
        by_region = {f.region: (f.count, f.area_px) for f in lesions if f.code == code}
        if by_region:
            red, green, blue = lesion_color(code)
            rows.append((code, LESION_BY_CODE[code].name, f"rgb({red},{green},{blue})",
                         [by_region.get(region) for region in regions]))  # fmt: skip
    validated = all(f.validated_on_real_data for f in lesions) if lesions else False
    disc_area = disc[0].area_px if disc and disc[0].count else None
    return FindingsTable(regions=regions, rows=rows, disc_area_px=disc_area, validated=validated)


def _label_for(result: ImageResult, labels: Mapping[str, LabelRow] | None) -> LabelRow | None:
    """The reference grades of an image: by id, else by its input's file name or stem."""
    if not labels:
        return None
    keys = [result.id]
    if result.source:
        keys += [Path(result.source).name, Path(result.source).stem]
    return next((labels[key] for key in keys if key in labels), None)


def _embedding_order(views: Sequence[ImageView]) -> list[ImageView]:
    """Referable and ungradable images first, then the rest, each in page order."""
    return sorted(views, key=lambda view: 0 if view.referable or view.ungradable else 1)


def _attach_images(views: Sequence[ImageView], out_dir: Path, max_embedded_images: int) -> None:
    """Set each view's photograph and overlay sources: data URIs for the first
    ``max_embedded_images`` in embedding order, relative file paths for the rest."""
    for rank, view in enumerate(_embedding_order(views)):
        view.embedded = rank < max_embedded_images
        preview = out_dir / "previews" / f"{view.result.id}.jpg"
        if preview.is_file():
            relative = preview.relative_to(out_dir).as_posix()
            view.preview_src = embed_preview(preview) if view.embedded else _relative_src(relative)
        for kind, label in OVERLAY_LABELS.items():
            relative = view.result.overlays.get(kind)
            if relative is None or not (out_dir / relative).is_file():
                continue
            src = embed_overlay(out_dir / relative, kind) if view.embedded else _relative_src(relative)
            view.overlays.append(OverlayView(kind, label, src, kind in OVERLAYS_ON_AT_START))


def _patient_views(
    results: Sequence[ImageResult], patients: Sequence[PatientResult], labels: Mapping[str, LabelRow] | None
) -> list[PatientView]:
    """Patients most urgent first; images in eye order; images no patient claims come last."""
    views = {
        result.id: ImageView(
            result=result,
            anchor=f"image-{index}",
            label=_label_for(result, labels),
            findings=_findings_table(result),
            quality_reasons=[QUALITY_REASONS.get(code, code) for code in result.quality.reasons],
        )
        for index, result in enumerate(results)
    }
    urgency = list(RECOMMENDATIONS)
    out: list[PatientView] = []
    claimed: set[str] = set()
    for patient in sorted(patients, key=lambda p: urgency.index(p.recommendation)):
        ids = [image_id for eye in patient.eyes for image_id in eye.image_ids if image_id in views]
        claimed.update(ids)
        headline, css = RECOMMENDATIONS[patient.recommendation]
        out.append(PatientView(patient, [views[image_id] for image_id in ids], headline, css))
    orphans = [view for image_id, view in views.items() if image_id not in claimed]
    if orphans:
        out.append(PatientView(None, orphans, "No patient summary", "none"))
    return out


def _run_value(run_info: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present (and not empty) in ``run_info``; dotted keys reach nested dicts."""
    for key in keys:
        value: Any = run_info
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if value not in (None, "", [], {}):
            return value
    return None


def _run_facts(run_info: Mapping[str, Any], results: Sequence[ImageResult]) -> list[tuple[str, str]]:
    """(label, value) lines of the header, from ``run_info`` with the first result's provenance
    and operating point as fallback."""
    provenance = results[0].provenance if results else None
    referable = next((r.referable for r in results if r.referable is not None), None)
    version = _run_value(run_info, "drscreen_version", "version") or (provenance and provenance.drscreen_version)
    model = _run_value(run_info, "model_name", "model.name") or (provenance and provenance.model_name)
    model_version = _run_value(run_info, "model_version", "model.version") or (provenance and provenance.model_version)
    sha = _run_value(run_info, "weights_sha256", "model.weights_sha256") or (provenance and provenance.weights_sha256)
    threshold = _run_value(run_info, "operating_point.threshold", "threshold")
    source = _run_value(run_info, "operating_point.source", "operating_point_source")
    if threshold is None and referable is not None:
        threshold, source = referable.threshold, referable.operating_point
    date = _run_value(run_info, "created", "finished", "started", "date") or (provenance and provenance.created)
    command = _run_value(run_info, "command", "argv")
    facts = [
        ("drscreen", str(version or "unknown")),
        ("Model", " ".join(str(part) for part in (model, model_version) if part) or "unknown"),
        ("Weights SHA-256", f"{str(sha)[:12]}…" if sha else "unknown"),
        ("Operating point", f"threshold {float(threshold):.3f} ({source})" if threshold is not None else "none"),
        ("Date", str(date or "unknown")),
    ]
    lesion_model = provenance.lesion_model if provenance is not None else None
    if lesion_model is not None:
        name = " ".join(str(part) for part in (lesion_model.model_name, lesion_model.model_version) if part)
        facts.insert(2, ("Lesion model", f"{name} ({lesion_model.preprocess.get('size', '?')} px)"))
    if command:
        facts.append(("Command", " ".join(map(str, command)) if isinstance(command, list) else str(command)))
    return facts


def _validation_status(results: Sequence[ImageResult]) -> dict[str, bool]:
    """Output name -> validated on real data (for every image), over the outputs the results report."""
    status: dict[str, bool] = {}
    for result in results:
        for name, validated in result.validated_on_real_data.items():
            status[name] = status.get(name, True) and validated
    return status


def _grade_distribution(results: Sequence[ImageResult]) -> list[dict[str, Any]]:
    """Images per DR grade, with bar lengths relative to the largest count."""
    counts = [sum(1 for r in results if r.dr is not None and r.dr.grade == g) for g in DR_GRADE_NAMES]
    top = max(max(counts), 1)
    return [{"grade": g, "name": DR_GRADE_NAMES[g], "count": counts[g], "share": counts[g] / top,
             "color": GRADE_COLORS[g]} for g in DR_GRADE_NAMES]  # fmt: skip


def _summary(
    results: Sequence[ImageResult], patients: Sequence[PatientResult], errors: Sequence[tuple[str, str, str]]
) -> dict[str, Any]:
    """Batch counts, recommendation counts and the grade distribution."""
    return {
        "images": len(results) + len(errors),
        "screened": sum(r.status == "screened" for r in results),
        "ungradable": sum(r.status == "ungradable" for r in results),
        "unreadable": len(errors),
        "referable": sum(r.referable is not None and r.referable.referable for r in results),
        "patients": len(patients),
        "recommendations": [(RECOMMENDATIONS[key][0], RECOMMENDATIONS[key][1],
                             sum(p.recommendation == key for p in patients)) for key in RECOMMENDATIONS],  # fmt: skip
        "distribution": _grade_distribution(results),
    }


def _finite(value: float | None) -> float | None:
    """``None`` for NaN (shown as "n/a"), else the float."""
    return None if value is None or math.isnan(value) else float(value)


def _interval(values: tuple[float, float] | None) -> tuple[float, float] | None:
    """A bootstrap interval, or ``None`` when absent or undefined."""
    if values is None or any(math.isnan(v) for v in values):
        return None
    return float(values[0]), float(values[1])


def _reference_referable(labels: Sequence[LabelRow], with_dme: Sequence[bool]) -> tuple[np.ndarray, dict[str, Any]]:
    """bool (N,) referable reference of ``labels`` by the rule of the score each is compared with,
    and how to label it.

    ``with_dme[i]``: image i's score combines DME (``ReferableResult.from_grades``); then its
    reference is DR >= 2 or DME >= 1 (where the label gives DME), else DR >= 2 alone: a DR-only
    score (the shipped model's) is not scored against DME referrals it cannot see. Those are
    counted in ``n_dme_only`` (label DME >= 1 with DR < 2, score without DME); DME agreement has
    its own section. ``title`` and ``rule`` name the reference in the page.
    """
    dr = np.array([label.dr_grade for label in labels], dtype=np.int64)
    dme = np.array([-1 if label.dme_grade is None else label.dme_grade for label in labels], dtype=np.int64)
    uses_dme = np.asarray(with_dme, dtype=bool)
    dr_referable = referable_labels(dr)
    dme_referable = dme >= REFERABLE_DME_MIN  # a missing DME grade (-1) is not
    dr_rule, dme_rule = f"DR ≥ {REFERABLE_DR_MIN}", f"DME ≥ {REFERABLE_DME_MIN}"
    if uses_dme.all():
        title, rule = "Referable disease", f"{dr_rule}, or {dme_rule} where the labels give a DME grade"
    elif not uses_dme.any():
        title, rule = f"Referable DR ({dr_rule})", f"{dr_rule}, as the referable score is DR-only"
    else:
        title, rule = "Referable disease", f"{dr_rule}, and {dme_rule} for the images whose score combines DME"
    labelling = {
        "title": title,
        "rule": rule,
        "n_dme_only": int((dme_referable & ~dr_referable & ~uses_dme).sum()),
        "dme_rule": dme_rule,
    }
    return dr_referable | (dme_referable & uses_dme), labelling


def _referable_scoring(reference: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """AUC, sensitivity and specificity of the stored referable scores at ``threshold``, with
    stratified 95 % percentile bootstrap intervals (``drscreen.metrics.score_referable``), and the ROC curve."""
    from sklearn.metrics import roc_curve

    metrics = score_referable(reference, scores, threshold, n_bootstrap=N_BOOTSTRAP, seed=0)
    sensitivity, specificity = metrics["sensitivity"], metrics["specificity"]
    out: dict[str, Any] = {
        "n": metrics["n"],
        "n_referable": metrics["n_referable"],
        "threshold": threshold,
        "sensitivity": _finite(sensitivity),
        "sensitivity_ci": _interval(metrics.get("sensitivity_ci")),
        "specificity": _finite(specificity),
        "specificity_ci": _interval(metrics.get("specificity_ci")),
        "auc": _finite(metrics["auc"]),
        "auc_ci": _interval(metrics.get("auc_ci")),
        "roc": None,
        "operating_point": (1.0 - (specificity if not math.isnan(specificity) else 1.0),
                            sensitivity if not math.isnan(sensitivity) else 0.0),  # fmt: skip
    }
    if out["auc"] is not None:
        fpr, tpr, _ = roc_curve(reference, scores)
        out["roc"] = list(zip(fpr.tolist(), tpr.tolist()))
    return out


def _grading_view(
    truth: list[int], probs: list[list[float]], names: Mapping[int, str], decoding: str
) -> dict[str, Any]:
    """Kappa, accuracy (with intervals) and the confusion matrix with cell shares for display."""
    metrics = grading_metrics(truth, probs, decoding, n_bootstrap=N_BOOTSTRAP, seed=0)
    matrix = metrics["confusion_matrix"]
    top = max((max(row) for row in matrix), default=1) or 1
    return {
        "n": metrics["n"],
        "accuracy": metrics["accuracy"],
        "accuracy_ci": _interval(metrics.get("accuracy_ci")),
        "qwk": _finite(metrics["qwk"]),
        "qwk_ci": _interval(metrics.get("qwk_ci")),
        "names": [names[k] for k in range(len(matrix))],
        "matrix": [[(count, count / top) for count in row] for row in matrix],
        "notes": metrics["notes"],
    }


def label_metrics(results: Sequence[ImageResult], labels: Mapping[str, LabelRow]) -> dict[str, Any]:
    """Agreement of the gradable results with the reference labels: DR (and DME) confusion
    matrices, kappa and accuracy, and the referable score's AUC, sensitivity and specificity.

    The referable reference follows the rule of the score it is compared with
    (``_reference_referable``): DR >= 2, and DME >= 1 only where the score combines DME.
    Ungradable images have no grade and are counted, not scored.
    """
    labelled = [(r, _label_for(r, labels)) for r in results]
    labelled = [(r, label) for r, label in labelled if label is not None]
    graded = [(r, label) for r, label in labelled if r.dr is not None]
    out: dict[str, Any] = {
        "n_labels": len(labels),
        "n_matched": len(labelled),
        "n_ungradable": len(labelled) - len(graded),
        "dr": None,
        "dme": None,
        "referable": None,
    }
    if not graded:
        return out
    decodings = {r.provenance.settings.get("dr_decoding", "argmax") for r, _ in graded}
    decoding = decodings.pop() if len(decodings) == 1 and decodings <= set(GRADE_DECODINGS) else "argmax"
    out["dr"] = _grading_view([label.dr_grade for _, label in graded], [r.dr.probabilities for r, _ in graded],
                              DR_GRADE_NAMES, decoding)  # fmt: skip
    out["dr"]["validated"] = all(r.dr.validated_on_real_data for r, _ in graded)
    with_dme = [(r, label) for r, label in graded if r.dme is not None and label.dme_grade is not None]
    if with_dme:
        dme_truth = [label.dme_grade for _, label in with_dme]
        out["dme"] = _grading_view(dme_truth, [r.dme.probabilities for r, _ in with_dme], DME_GRADE_NAMES, "argmax")
        out["dme"]["validated"] = all(r.dme.validated_on_real_data for r, _ in with_dme)
    scored = [(r, label) for r, label in graded if r.referable is not None]
    if scored:
        reference, labelling = _reference_referable(
            [label for _, label in scored], ["dme" in r.referable.from_grades for r, _ in scored]
        )
        scores = np.array([r.referable.score for r, _ in scored], dtype=np.float64)
        thresholds = {r.referable.threshold for r, _ in scored}
        out["referable"] = _referable_scoring(reference, scores, max(thresholds)) | labelling
        out["referable"]["several_thresholds"] = len(thresholds) > 1
        out["referable"]["operating_point_source"] = scored[0][0].referable.operating_point
        out["referable"]["validated"] = all(r.referable.validated_on_real_data for r, _ in scored)
    return out


def _pct(value: float | None, digits: int = 1) -> str:
    """A fraction as a percentage, "n/a" for ``None``."""
    return "n/a" if value is None else f"{100.0 * value:.{digits}f} %"


def _ci(values: tuple[float, float] | None, as_percent: bool = True) -> str:
    """A 95 % interval in words, empty for ``None``."""
    if values is None:
        return ""
    low, high = values
    if as_percent:
        return f"95 % CI {100.0 * low:.1f}–{100.0 * high:.1f} %"
    return f"95 % CI {low:.2f}–{high:.2f}"


def _number(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals, "n/a" for ``None``."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def _area(value: float) -> str:
    """An area in pixels with thousands separators."""
    return f"{value:,.0f}"


def _environment() -> Environment:
    """Jinja2 environment on the packaged templates, autoescaping everything."""
    env = Environment(
        loader=PackageLoader("drscreen.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=_pct, ci=_ci, number=_number, area=_area)
    return env


def render_html_report(
    out_dir: Path,
    results: Sequence[ImageResult],
    patients: Sequence[PatientResult],
    errors: Sequence[tuple[str, str, str]],
    run_info: Mapping[str, Any],
    labels: Mapping[str, LabelRow] | None = None,
    max_embedded_images: int = 300,
) -> str:
    """The report page as a string (see ``write_html_report``)."""
    out_dir = Path(out_dir)
    patient_views = _patient_views(results, patients, labels)
    image_views = [view for patient in patient_views for view in patient.images]
    _attach_images(image_views, out_dir, max_embedded_images)
    validated_outputs = _validation_status(results)
    template = _environment().get_template("report.html.j2")
    return template.render(
        notice=RESEARCH_NOTICE,
        schema_version=SCHEMA_VERSION,
        facts=_run_facts(run_info, results),
        run_info_json=json.dumps(run_info, indent=2, sort_keys=True, default=str),
        validation=[(OUTPUT_NAMES.get(name, name.replace("_", " ")), flag) for name, flag in validated_outputs.items()],
        validated_outputs=validated_outputs,
        summary=_summary(results, patients, errors),
        errors=errors,
        metrics=label_metrics(results, labels) if labels is not None else None,
        patients=patient_views,
        n_images=len(image_views),
        n_linked=sum(not view.embedded for view in image_views),
        max_embedded_images=max_embedded_images,
        overlay_labels=OVERLAY_LABELS,
        overlays_on=OVERLAYS_ON_AT_START,
        dr_names=DR_GRADE_NAMES,
        dme_names=DME_GRADE_NAMES,
        grade_colors=GRADE_COLORS,
        region_names=REGION_NAMES,
        lesion_legend=[(c, LESION_BY_CODE[c].name, "rgb({},{},{})".format(*lesion_color(c)))
                       for c in SEGMENTATION_LESIONS],  # fmt: skip
    )


def write_html_report(
    out_dir: Path,
    results: Sequence[ImageResult],
    patients: Sequence[PatientResult],
    errors: Sequence[tuple[str, str, str]],
    run_info: dict,
    labels: Mapping[str, LabelRow] | None = None,
    max_embedded_images: int = 300,
) -> Path:
    """Write ``out_dir/report.html``, one self-contained page of the run, and return its path.

    Args:
        out_dir: the screening output folder (``previews/``, ``overlays/`` are read from it).
        results: one ``ImageResult`` per screened or ungradable image.
        patients: the ``PatientResult`` of every patient visit.
        errors: ``(file, reason, message)`` of every input that could not be read.
        run_info: the run's ``run.json`` content (version, model, operating point, date, command).
        labels: reference grades per image id (``read_labels``); adds the agreement section.
        max_embedded_images: photographs embedded as data URIs at most; referable and
            ungradable first, the rest are linked to their files.
    """
    path = Path(out_dir) / REPORT_NAME
    page = render_html_report(out_dir, results, patients, errors, run_info, labels, max_embedded_images)
    path.write_text(page, encoding="utf-8")
    return path
