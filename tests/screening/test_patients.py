"""The worst-eye rule and the per-visit recommendation."""

from __future__ import annotations

from drscreen.screening.inputs import ScreeningInput
from drscreen.screening.patients import eye_summary, patient_results, recommend
from drscreen.screening.schema import EyeSummary, ImageResult


def result(image_id: str, patient: str | None, side: str | None, dr: int | None, referable: bool | None,
           visit: str | None = "v1") -> ImageResult:  # fmt: skip
    """A minimal result: screened with the given grade, or ungradable when ``dr`` is None."""
    graded = dr is not None
    return ImageResult.model_validate({
        "id": image_id, "source": None, "content_sha256": "0" * 64, "image_size": (10, 10),
        "patient_id": patient, "laterality": side, "laterality_source": "manifest" if side else None,
        "visit": visit, "field": None, "status": "screened" if graded else "ungradable",
        "quality": {"gradable": graded, "reasons": [] if graded else ["too_blurry"], "measures": {}},
        "dr": {"grade": dr, "name": "x", "probabilities": [0.2] * 5, "validated_on_real_data": True} if graded else None,
        "dme": None,
        "referable": {"score": 0.9 if referable else 0.1, "referable": referable, "threshold": 0.5,
                      "operating_point": "t", "from_grades": ["dr"], "validated_on_real_data": True} if graded else None,
        "lesions": [], "landmarks": None, "explanation": None, "overlays": {}, "warnings": [],
        "validated_on_real_data": {"dr": True},
        "provenance": {"drscreen_version": "0", "model_name": "m", "model_version": None, "weights_sha256": "w",
                       "runtime": "r", "preprocess": {}, "settings": {}, "settings_key": "k", "seconds": 0.0,
                       "created": "2026-12-03T00:00:00+00:00"},
    })  # fmt: skip


def test_an_eye_is_its_worst_gradable_image() -> None:
    eye = eye_summary("R", [result("a", "p", "R", 1, False), result("b", "p", "R", None, None), result("c", "p", "R", 3, True)])
    assert (eye.status, eye.dr_grade, eye.referable, eye.image_ids) == ("screened", 3, True, ["a", "b", "c"])
    assert eye_summary("L", [result("d", "p", "L", None, None)]).status == "ungradable"


def test_recommendations_never_call_an_ungradable_eye_negative() -> None:
    def eye(status: str, referable: bool | None) -> EyeSummary:
        return EyeSummary(laterality="R", image_ids=["x"], status=status, dr_grade=None, dme_grade=None,
                          referable=referable)  # type: ignore[arg-type]  # fmt: skip

    assert recommend([eye("screened", True), eye("ungradable", None)])[0] == "refer"
    assert recommend([eye("screened", False), eye("ungradable", None)])[0] == "retake_or_refer"
    assert recommend([eye("screened", False), eye("screened", False)])[0] == "rescreen_12_months"


def test_patients_are_grouped_by_id_and_visit_and_unknown_patients_stand_alone() -> None:
    patients = patient_results([
        result("r1", "p1", "R", 0, False), result("l1", "p1", "L", 2, True),
        result("r2", "p1", "R", 0, False, visit="v2"), result("solo", None, None, 0, False),
    ])  # fmt: skip
    keyed = {(p.patient_id, p.visit): p for p in patients}
    assert keyed[("p1", "v1")].recommendation == "refer" and {e.laterality for e in keyed[("p1", "v1")].eyes} == {"R", "L"}
    assert keyed[("p1", "v2")].recommendation == "rescreen_12_months"
    assert keyed[("solo", "v1")].eyes[0].laterality == "unknown"


def test_an_unreadable_photograph_keeps_its_visit_from_a_negative_result() -> None:
    patients = patient_results(
        [result("r1", "p1", "R", 0, False), result("l1", "p1", "L", 0, False), result("r2", "p2", "R", 0, False)],
        unreadable=[ScreeningInput(id="l1-retake", patient_id="p1", laterality="L", visit="v1"),
                    ScreeningInput(id="broken", patient_id="p2", visit="v1")],
    )  # fmt: skip
    keyed = {p.patient_id: p for p in patients}
    assert keyed["p1"].recommendation == "rescreen_12_months", "the left eye has a gradable photograph"
    assert "l1-retake" in next(e for e in keyed["p1"].eyes if e.laterality == "L").image_ids
    assert keyed["p2"].recommendation == "retake_or_refer"
    assert [e.laterality for e in keyed["p2"].eyes] == ["R", "unknown"]
