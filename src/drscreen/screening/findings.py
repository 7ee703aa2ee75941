"""Region findings: lesion counts and areas per retinal region (optic disc, macula, rest).

Lesion maps are thresholded in the network-crop geometry, split into connected components,
and each component is assigned to the region of its centroid (``drscreen.retina.region_map``
built from the located disc and fovea). Areas are converted to ORIGINAL-image pixels with the
crop's scale, so they do not depend on the network's input size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from drscreen.grading import LESION_BY_CODE, SEGMENTATION_LESIONS
from drscreen.retina import Region, region_map
from drscreen.screening.landmarks import Landmarks
from drscreen.screening.schema import LesionFinding

#: A lesion-map pixel counts as lesion from this probability on.
LESION_THRESHOLD = 0.5
#: Region -> its name in results.
REGION_NAMES: dict[Region, str] = {Region.OPTIC_DISC: "optic_disc", Region.MACULA: "macula", Region.REST: "rest"}


def lesion_findings(
    lesion_probs: np.ndarray,
    lesion_classes: Sequence[str],
    landmarks: Landmarks | None,
    fov_mask: np.ndarray,
    crop_scale: float,
    validated: Mapping[str, bool],
    threshold: float = LESION_THRESHOLD,
) -> list[LesionFinding]:
    """Counts and areas of each lesion per region, and the optic disc's area.

    Args:
        lesion_probs: (C, S, S) float probabilities in the crop, channels ``lesion_classes``.
        landmarks: disc and fovea in crop pixels; None puts every lesion in region ``"all"``.
        fov_mask: (S, S) bool field of view in the crop.
        crop_scale: crop pixels per original pixel (``CropGeometry.scale``).
        validated: output name (``"lesion_maps"``, ``"optic_disc"``) -> validated on real data.
        threshold: probability from which a pixel is lesion.

    Returns:
        One finding per lesion (MA, HE, EX, SE present in ``lesion_classes``) and region, zeros
        included; plus ``OD`` over region ``"all"`` when the model has an optic-disc channel.
    """
    if lesion_probs.shape[0] != len(lesion_classes):
        raise ValueError(f"{lesion_probs.shape[0]} lesion maps but {len(lesion_classes)} classes")
    size = lesion_probs.shape[-2:]
    regions = None
    if landmarks is not None:
        regions = region_map(size, landmarks.disc_center, landmarks.disc_diameter, landmarks.fovea_center, fov_mask)
    pixel_area = 1.0 / (crop_scale * crop_scale)
    findings: list[LesionFinding] = []
    for channel, code in enumerate(lesion_classes):
        mask = (lesion_probs[channel] >= threshold) & fov_mask
        if code == "OD":
            findings.append(_finding(code, "all", 1 if mask.any() else 0, float(mask.sum()) * pixel_area,
                                     validated.get("optic_disc", False)))  # fmt: skip
            continue
        if code not in SEGMENTATION_LESIONS:
            continue
        counts, areas = _components_by_region(mask, regions)
        lesion_validated = validated.get("lesion_maps", False)
        if regions is None:
            findings.append(_finding(code, "all", counts[0], areas[0] * pixel_area, lesion_validated))
            continue
        for region, name in REGION_NAMES.items():
            findings.append(_finding(code, name, counts[region], areas[region] * pixel_area, lesion_validated))
    return findings


def _components_by_region(mask: np.ndarray, regions: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Component counts and pixel areas (index: ``Region`` value; 0 = all when ``regions`` is None)."""
    counts, areas = np.zeros(4, np.int64), np.zeros(4, np.float64)
    if not mask.any():
        return counts, areas
    n, _, stats, centroids = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    for label in range(1, n):
        region = 0
        if regions is not None:
            x = int(np.clip(round(centroids[label][0]), 0, mask.shape[1] - 1))
            y = int(np.clip(round(centroids[label][1]), 0, mask.shape[0] - 1))
            region = int(regions[y, x]) or int(Region.REST)
        counts[region] += 1
        areas[region] += stats[label, cv2.CC_STAT_AREA]
    return counts, areas


def _finding(code: str, region: str, count: int, area: float, validated: bool) -> LesionFinding:
    return LesionFinding(
        code=code, name=LESION_BY_CODE[code].name, region=region,  # type: ignore[arg-type]
        count=int(count), area_px=round(float(area), 1), validated_on_real_data=validated,
    )  # fmt: skip
