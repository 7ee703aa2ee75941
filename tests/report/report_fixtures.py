"""Screening output folders for the report tests and screenshots, made from synthetic fundus images.

``python tests/report/report_fixtures.py OUT_DIR`` writes a synthetic run and its report.html
(the fixture behind docs/images/report_*.png): no real patient data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw

from drscreen.grading import DME_GRADE_NAMES, DR_GRADE_NAMES, SEGMENTATION_LESIONS, lesion_color
from drscreen.report.html import write_html_report
from drscreen.report.labels import LabelRow
from drscreen.retina import Region, region_map
from drscreen.screening.schema import (
    EyeSummary,
    ExplanationResult,
    GradeResult,
    ImageResult,
    LandmarkResult,
    LesionFinding,
    PatientResult,
    Provenance,
    QualityResult,
    ReferableResult,
)
from drscreen.synth import SynthFundus, generate_fundus

THRESHOLD = 0.4
VALIDATED = {"dr": True, "referable": True, "dme": False, "lesion_maps": False, "optic_disc": False, "explanation": False}
REGIONS = {Region.OPTIC_DISC: "optic_disc", Region.MACULA: "macula", Region.REST: "rest"}


def provenance() -> Provenance:
    """Provenance of a made-up run."""
    return Provenance(
        drscreen_version="0.1.0", model_name="drscreen-default", model_version="1.0", weights_sha256="ab" * 32,
        runtime="torch cpu", preprocess={}, settings={"dr_decoding": "argmax"}, settings_key="k" * 16,
        seconds=0.8, created="2025-01-01T00:00:00Z",
    )  # fmt: skip


def peaked(grade: int, size: int, peak: float = 0.7) -> list[float]:
    """Probabilities with ``peak`` on ``grade`` and the rest spread evenly."""
    rest = (1.0 - peak) / (size - 1)
    return [peak if k == grade else rest for k in range(size)]


def screened_result(
    image_id: str,
    dr_grade: int,
    *,
    patient_id: str | None,
    laterality: str | None,
    dme_grade: int = 0,
    overlays: dict[str, str] | None = None,
    lesions: list[LesionFinding] | None = None,
    landmarks: LandmarkResult | None = None,
    image_size: tuple[int, int] = (96, 64),
    warnings: list[str] | None = None,
    peak: float = 0.7,
) -> ImageResult:
    """A gradable image; the referable score is P(DR >= 2) of its peaked DR probabilities."""
    dr_probs = peaked(dr_grade, 5, peak)
    score = sum(dr_probs[2:])
    return ImageResult(
        id=image_id, source=f"/input/{image_id}.jpg", content_sha256="0" * 64, image_size=image_size,
        patient_id=patient_id, laterality=laterality, laterality_source="file_name" if laterality else None,
        visit=None, field=None, status="screened",
        quality=QualityResult(gradable=True, reasons=[], measures={"sharpness": 0.8}),
        dr=GradeResult(grade=dr_grade, name=DR_GRADE_NAMES[dr_grade], probabilities=dr_probs,
                       validated_on_real_data=True),
        dme=GradeResult(grade=dme_grade, name=DME_GRADE_NAMES[dme_grade], probabilities=peaked(dme_grade, 3),
                        validated_on_real_data=False),
        referable=ReferableResult(score=score, referable=score >= THRESHOLD, threshold=THRESHOLD,
                                  operating_point="sensitivity 0.90 on the packed validation curve",
                                  from_grades=["dr"], validated_on_real_data=True),
        lesions=lesions if lesions is not None else [
            LesionFinding(code="EX", name="Hard exudates", region="macula", count=3, area_px=120.0,
                          validated_on_real_data=False)],
        landmarks=landmarks,
        explanation=ExplanationResult(method="gmsm", target="referable", settings={}, degenerate=False,
                                      fallback=False, skipped=[]),
        overlays=overlays or {}, warnings=warnings or [], validated_on_real_data=VALIDATED, provenance=provenance(),
    )  # fmt: skip


def ungradable_result(
    image_id: str, *, patient_id: str | None, laterality: str | None, image_size: tuple[int, int] = (96, 64)
) -> ImageResult:
    """An image the quality gate rejected: no grade, no overlays but the photograph."""
    return ImageResult(
        id=image_id, source=f"/input/{image_id}.jpg", content_sha256="1" * 64, image_size=image_size,
        patient_id=patient_id, laterality=laterality, laterality_source="file_name" if laterality else None,
        visit=None, field=None, status="ungradable",
        quality=QualityResult(gradable=False, reasons=["too_blurry", "too_dark"], measures={"sharpness": 0.05}),
        dr=None, dme=None, referable=None, lesions=[], landmarks=None, explanation=None, overlays={}, warnings=[],
        validated_on_real_data=VALIDATED, provenance=provenance(),
    )  # fmt: skip


def eye(laterality: str, results: list[ImageResult]) -> EyeSummary:
    """The worst-image summary of one eye, as the screening pipeline makes it."""
    graded = [r for r in results if r.dr is not None]
    if not graded:
        return EyeSummary(laterality=laterality, image_ids=[r.id for r in results], status="ungradable",
                          dr_grade=None, dme_grade=None, referable=None)  # fmt: skip
    return EyeSummary(
        laterality=laterality, image_ids=[r.id for r in results], status="screened",
        dr_grade=max(r.dr.grade for r in graded), dme_grade=max(r.dme.grade for r in graded),
        referable=any(r.referable.referable for r in graded),
    )  # fmt: skip


def write_overlay_files(out_dir: Path, image_id: str, size: tuple[int, int] = (96, 64)) -> dict[str, str]:
    """Small preview and overlay files of one image; returns ``ImageResult.overlays``."""
    for folder in ("previews", "overlays/lesions", "overlays/disc", "overlays/saliency"):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 40, 20)).save(out_dir / "previews" / f"{image_id}.jpg")
    overlays = {}
    for kind, colour in (("lesions", (255, 255, 0, 255)), ("disc", (255, 0, 255, 255)), ("saliency", (255, 0, 0, 128))):
        image = Image.new("RGBA", size, (0, 0, 0, 0))
        ImageDraw.Draw(image).ellipse((10, 10, 30, 30), fill=colour)
        relative = f"overlays/{kind}/{image_id}.png"
        image.save(out_dir / relative)
        overlays[kind] = relative
    return overlays


def _region_findings(fundus: SynthFundus, regions: np.ndarray) -> list[LesionFinding]:
    """Lesion counts and areas per region of the drawn masks (component centroid decides)."""
    findings = []
    for code in SEGMENTATION_LESIONS:
        n, _, stats, centroids = cv2.connectedComponentsWithStats(fundus.masks[code].astype(np.uint8))
        for region, name in REGIONS.items():
            members = [k for k in range(1, n) if regions[int(centroids[k][1]), int(centroids[k][0])] == region]
            findings.append(LesionFinding(
                code=code, name=code, region=name, count=len(members),
                area_px=float(sum(stats[k, cv2.CC_STAT_AREA] for k in members)), validated_on_real_data=False,
            ))  # fmt: skip
    return findings


def _draw_synthetic_overlays(out_dir: Path, image_id: str, fundus: SynthFundus) -> dict[str, str]:
    """Preview, lesion, disc and saliency files of one synthetic fundus, as the writers make them."""
    geometry = fundus.geometry
    height, width = fundus.image.shape[:2]
    for folder in ("previews", "overlays/lesions", "overlays/disc", "overlays/saliency"):
        (out_dir / folder).mkdir(parents=True, exist_ok=True)
    Image.fromarray(fundus.image).save(out_dir / "previews" / f"{image_id}.jpg", quality=90)

    lesions = np.zeros((height, width, 4), np.uint8)
    for code in SEGMENTATION_LESIONS:
        lesions[fundus.masks[code]] = (*lesion_color(code), 255)
    Image.fromarray(lesions, "RGBA").save(out_dir / "overlays" / "lesions" / f"{image_id}.png")

    disc = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(disc)
    (dx, dy), dd = geometry.disc_center, geometry.disc_diameter
    fx, fy = geometry.fovea
    draw.ellipse((dx - dd / 2, dy - dd / 2, dx + dd / 2, dy + dd / 2), outline=(0, 255, 255, 255), width=3)
    draw.ellipse((fx - dd, fy - dd, fx + dd, fy + dd), outline=(255, 255, 255, 220), width=2)
    draw.line((fx - 8, fy, fx + 8, fy), fill=(255, 255, 255, 255), width=2)
    draw.line((fx, fy - 8, fx, fy + 8), fill=(255, 255, 255, 255), width=2)
    disc.save(out_dir / "overlays" / "disc" / f"{image_id}.png")

    lesion_any = np.any([fundus.masks[c] for c in SEGMENTATION_LESIONS], axis=0).astype(np.float32)
    heat = cv2.GaussianBlur(lesion_any, (0, 0), sigmaX=width / 30)
    heat = heat / heat.max() if heat.max() > 0 else heat
    rgba = (matplotlib.colormaps["inferno"](heat) * 255).astype(np.uint8)
    rgba[..., 3] = (np.clip(heat * 1.4, 0, 1) * 220).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(out_dir / "overlays" / "saliency" / f"{image_id}.png")
    return {kind: f"overlays/{kind}/{image_id}.png" for kind in ("lesions", "disc", "saliency")}


def synthetic_run(out_dir: Path) -> tuple[list[ImageResult], list[PatientResult], dict[str, LabelRow]]:
    """Four synthetic patients (referable, false positive, one ungradable eye, negative) and reference
    labels, with a missed and a false referral so the agreement section shows real numbers."""
    # (patient, eye, seed, drawn DR, drawn DME, predicted DR or None for the drawn one, probability peak)
    plan = [("P-0001", "R", 11, 3, 2, None, 0.7), ("P-0001", "L", 12, 2, 1, 1, 0.5),
            ("P-0002", "R", 21, 0, 0, None, 0.8), ("P-0002", "L", 22, 1, 0, 2, 0.45),
            ("P-0003", "R", 31, 0, 0, None, 0.75), ("P-0004", "R", 51, 1, 0, None, 0.6)]  # fmt: skip
    results = []
    labels = {}
    for patient, side, seed, dr, dme, predicted, peak in plan:
        side_name = "right" if side == "R" else "left"
        fundus = generate_fundus(seed=seed, size=512, target_dr=dr, target_dme=dme, eye=side_name)
        image_id = f"{patient}_{side}"
        overlays = _draw_synthetic_overlays(out_dir, image_id, fundus)
        geometry = fundus.geometry
        regions = region_map((512, 512), geometry.disc_center, geometry.disc_diameter, geometry.fovea)
        landmarks = LandmarkResult(
            disc_center=geometry.disc_center, disc_diameter_px=geometry.disc_diameter, disc_confidence=0.93,
            disc_source="model", fovea_center=geometry.fovea, fovea_confidence=0.81, laterality=side,
            laterality_confidence=0.9,
        )  # fmt: skip
        warnings = ["laterality from the file name (L) disagrees with the image (R)"] if seed == 22 else []
        results.append(screened_result(
            image_id, fundus.dr_grade if predicted is None else predicted, patient_id=patient, laterality=side,
            dme_grade=fundus.dme_grade, peak=peak,
            overlays=overlays, lesions=_region_findings(fundus, regions), landmarks=landmarks,
            image_size=(512, 512), warnings=warnings,
        ))  # fmt: skip
        labels[image_id] = LabelRow(dr_grade=fundus.dr_label, dme_grade=fundus.dme_label)
    blurred = generate_fundus(seed=41, size=512, target_dr=0).image
    Image.fromarray(cv2.GaussianBlur(blurred, (0, 0), 12) // 3).save(out_dir / "previews" / "P-0003_L.jpg")
    results.append(ungradable_result("P-0003_L", patient_id="P-0003", laterality="L", image_size=(512, 512)))
    labels["P-0003_L"] = LabelRow(dr_grade=1)
    patients = []
    for patient_id in ("P-0001", "P-0002", "P-0003", "P-0004"):
        mine = [r for r in results if r.patient_id == patient_id]
        eyes = [eye(side, [r for r in mine if r.laterality == side]) for side in ("R", "L") if
                any(r.laterality == side for r in mine)]  # fmt: skip
        if any(e.referable for e in eyes):
            recommendation, reason = "refer", "referable diabetic eye disease in eye(s): " + ", ".join(
                e.laterality for e in eyes if e.referable)
        elif any(e.status == "ungradable" for e in eyes):
            recommendation = "retake_or_refer"
            reason = "no gradable photograph of eye(s): L; a negative result cannot be given"
        else:
            recommendation, reason = "rescreen_12_months", "no referable disease found in any gradable eye"
        patients.append(PatientResult(patient_id=patient_id, visit=None, eyes=eyes, recommendation=recommendation,
                                      reason=reason))  # fmt: skip
    return results, patients, labels


RUN_INFO = {
    "drscreen_version": "0.1.0",
    "model_name": "drscreen-default",
    "model_version": "1.0",
    "weights_sha256": "ab" * 32,
    "operating_point": {"threshold": THRESHOLD, "source": "sensitivity 0.90 on the packed validation curve"},
    "created": "2025-01-01T09:30:00Z",
    "command": "drscreen screen photos/ --out run/ --labels labels.csv",
}


def main(out_dir: Path) -> Path:
    """Write the synthetic run and its report into ``out_dir``; return the report's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results, patients, labels = synthetic_run(out_dir)
    errors = [("photos/scan_0007.pdf", "unsupported_format", "not an image file")]
    return write_html_report(out_dir, results, patients, errors, RUN_INFO, labels=labels)


if __name__ == "__main__":
    print(main(Path(sys.argv[1])))
