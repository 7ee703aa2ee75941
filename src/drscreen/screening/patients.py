"""Per eye and per patient visit: the worst-eye rule and one recommendation.

As screening programmes do: an eye's result is the worst of its images; a patient's visit is
referred when either eye is referable; an eye with no gradable image is never called negative
("retake or refer"), and neither is a visit with a photograph that could not be read; otherwise
rescreen in 12 months. Research output, not advice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from drscreen.screening.inputs import ScreeningInput
from drscreen.screening.schema import EyeSummary, ImageResult, PatientResult

#: Patient key for images that carry no patient id: each such image is its own "patient".
_NO_PATIENT = "__image__"


def eye_summary(laterality: str, images: list[ImageResult], unreadable: list[str] | None = None) -> EyeSummary:
    """The worst result among one eye's images; ``ungradable`` when none was gradable.

    ``unreadable``: ids of this eye's inputs that could not be read (listed with the images).
    """
    graded = [r for r in images if r.status == "screened" and r.dr is not None]
    ids = [r.id for r in images] + list(unreadable or [])
    if not graded:
        return EyeSummary(laterality=laterality, image_ids=ids, status="ungradable",  # type: ignore[arg-type]
                          dr_grade=None, dme_grade=None, referable=None)  # fmt: skip
    dme = [r.dme.grade for r in graded if r.dme is not None]
    return EyeSummary(
        laterality=laterality,  # type: ignore[arg-type]
        image_ids=ids,
        status="screened",
        dr_grade=max(r.dr.grade for r in graded if r.dr is not None),
        dme_grade=max(dme) if dme else None,
        referable=any(r.referable is not None and r.referable.referable for r in graded),
    )


def recommend(eyes: list[EyeSummary]) -> tuple[str, str]:
    """(recommendation, reason) for one visit from its eyes."""
    referable = [e for e in eyes if e.referable]
    if referable:
        sides = ", ".join(e.laterality for e in referable)
        return "refer", f"referable diabetic eye disease in eye(s): {sides}"
    ungradable = [e for e in eyes if e.status == "ungradable"]
    if ungradable:
        sides = ", ".join(e.laterality for e in ungradable)
        return "retake_or_refer", f"no gradable photograph of eye(s): {sides}; a negative result cannot be given"
    return "rescreen_12_months", "no referable disease found in any gradable eye"


def patient_results(results: Iterable[ImageResult], unreadable: Iterable[ScreeningInput] = ()) -> list[PatientResult]:
    """One ``PatientResult`` per (patient, visit), sorted; images without a patient id stand alone.

    ``unreadable``: inputs that could not be read; they count as ungradable photographs of their
    patient's eye (of an ``unknown`` eye when their laterality is not known).
    """
    visits: dict[tuple[str, str | None], dict[str, list[ImageResult]]] = defaultdict(lambda: defaultdict(list))
    failed: dict[tuple[str, str | None], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for result in results:
        patient = result.patient_id or f"{_NO_PATIENT}{result.id}"
        visits[(patient, result.visit)][result.laterality or "unknown"].append(result)
    for item in unreadable:
        key = (item.patient_id or f"{_NO_PATIENT}{item.id}", item.visit)
        failed[key][item.laterality or "unknown"].append(item.id)
        visits[key].setdefault(item.laterality or "unknown", [])
    patients = []
    for (patient, visit), by_eye in sorted(visits.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        eyes = [eye_summary(side, images, failed[(patient, visit)].get(side)) for side, images in sorted(by_eye.items())]
        recommendation, reason = recommend(eyes)
        patient_id = patient.removeprefix(_NO_PATIENT) if patient.startswith(_NO_PATIENT) else patient
        patients.append(PatientResult(patient_id=patient_id, visit=visit, eyes=eyes,
                                      recommendation=recommendation, reason=reason))  # type: ignore[arg-type]  # fmt: skip
    return patients
