"""Explainability: CAM, Grad-CAM, Grad-CAM++ and GMSM saliency maps, their targets and overlays.

Typical use::

    explanation = explain_default(model, image)       # the default method (with fallbacks), one image
    method = create_saliency("gmsm", model)
    maps = method(images, ReferableTarget())          # (B, S, S) in [0, 1]
    originals = to_original_geometry(maps, geometries)  # one (H, W) map per photograph
    picture = heatmap_overlay(photo, originals[0])
    table = faithfulness_table(model, images, lesion_masks)  # pointing game, mass, AUPR per method
"""

from drscreen.explain.default import (
    DEFAULT_EXPLANATION,
    EXPLANATION_TARGETS,
    FALLBACK_EXPLANATIONS,
    Explanation,
    ExplanationMethod,
    explain_default,
    is_degenerate,
)
from drscreen.explain.faithfulness import (
    POINTING_TOLERANCE,
    faithfulness_table,
    pointing_game,
    saliency_aupr,
    saliency_maps,
    saliency_mass_inside,
    score_maps,
)
from drscreen.explain.geometry import to_original_geometry
from drscreen.explain.overlay import heatmap_overlay, mask_overlay, saliency_grid
from drscreen.explain.saliency import (
    CAM,
    GMSM,
    SALIENCY_METHODS,
    CAMNotApplicableError,
    GradCAM,
    GradCAMPlusPlus,
    SaliencyMethod,
    create_saliency,
    list_saliency_methods,
)
from drscreen.explain.targets import (
    DMETarget,
    DRGradeTarget,
    LesionTarget,
    ReferableLogOddsTarget,
    ReferableTarget,
    RegressionTarget,
    Target,
    TargetError,
    default_target,
)

__all__ = [
    "CAM",
    "DEFAULT_EXPLANATION",
    "EXPLANATION_TARGETS",
    "FALLBACK_EXPLANATIONS",
    "GMSM",
    "POINTING_TOLERANCE",
    "SALIENCY_METHODS",
    "CAMNotApplicableError",
    "DMETarget",
    "DRGradeTarget",
    "Explanation",
    "ExplanationMethod",
    "GradCAM",
    "GradCAMPlusPlus",
    "LesionTarget",
    "ReferableLogOddsTarget",
    "ReferableTarget",
    "RegressionTarget",
    "SaliencyMethod",
    "Target",
    "TargetError",
    "create_saliency",
    "default_target",
    "explain_default",
    "faithfulness_table",
    "heatmap_overlay",
    "is_degenerate",
    "list_saliency_methods",
    "mask_overlay",
    "pointing_game",
    "saliency_aupr",
    "saliency_grid",
    "saliency_maps",
    "saliency_mass_inside",
    "score_maps",
    "to_original_geometry",
]
