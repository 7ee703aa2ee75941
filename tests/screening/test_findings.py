"""Lesion counts and areas per retinal region."""

from __future__ import annotations

import numpy as np
import pytest

from drscreen.screening.findings import lesion_findings
from drscreen.screening.landmarks import Landmarks


def landmarks() -> Landmarks:
    return Landmarks(disc_center=(80.0, 50.0), disc_diameter=10.0, disc_confidence=1.0, disc_source="model",
                     fovea_center=(50.0, 50.0), fovea_confidence=1.0, laterality="R",
                     laterality_confidence=1.0)  # fmt: skip


def test_components_are_counted_in_the_region_of_their_centroid_and_areas_are_original_pixels() -> None:
    classes = ("MA", "HE", "EX", "SE", "OD")
    probs = np.zeros((5, 100, 100), np.float32)
    probs[0, 50, 52] = 0.9  # MA inside the macula (2 px from the fovea)
    probs[0, 10:12, 10:12] = 0.9  # MA elsewhere (4 px)
    probs[1, 49:52, 79:82] = 0.8  # HE on the disc (9 px)
    probs[2, 90:92, 90:92] = 0.4  # below the threshold: not counted
    probs[4, 46:55, 76:85] = 0.95  # the disc itself (81 px)
    fov = np.ones((100, 100), bool)
    findings = lesion_findings(probs, classes, landmarks(), fov, crop_scale=0.5, validated={"lesion_maps": False})
    by = {(f.code, f.region): f for f in findings}
    assert by[("MA", "macula")].count == 1 and by[("MA", "rest")].count == 1 and by[("MA", "optic_disc")].count == 0
    assert by[("MA", "rest")].area_px == pytest.approx(16.0)  # 4 crop px at scale 0.5 = 16 original px
    assert by[("HE", "optic_disc")].count == 1 and by[("HE", "optic_disc")].area_px == pytest.approx(36.0)
    assert all(by[("EX", region)].count == 0 for region in ("optic_disc", "macula", "rest"))
    assert by[("OD", "all")].count == 1 and by[("OD", "all")].area_px == pytest.approx(324.0)
    assert not any(f.validated_on_real_data for f in findings if f.code != "OD")


def test_without_landmarks_every_lesion_is_counted_once_in_all() -> None:
    probs = np.zeros((2, 20, 20), np.float32)
    probs[0, 2, 2] = probs[0, 10, 10] = 1.0
    findings = lesion_findings(probs, ("MA", "HE"), None, np.ones((20, 20), bool), 1.0, {})
    assert [(f.code, f.region, f.count) for f in findings] == [("MA", "all", 2), ("HE", "all", 0)]
    with pytest.raises(ValueError):
        lesion_findings(probs, ("MA",), None, np.ones((20, 20), bool), 1.0, {})
