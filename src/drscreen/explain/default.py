"""The default explanation of a screening result: one named method, a fallback chain, a record.

``DEFAULT_EXPLANATION`` is the saliency method, score and settings that drscreen shows by
default; it was chosen by measured faithfulness on the 30 real IDRiD photographs with the shipped
model (``benchmarks/explanation_default.py``, docs/explainability.md). ``explain_default`` runs it
on one network input and never hands back an uninformative map silently: when a map is
degenerate (not finite, or one value everywhere, e.g. the all-zero map of a fully gated GMSM)
it tries the next entry of ``FALLBACK_EXPLANATIONS``, and the returned ``Explanation`` names the
method that made the map, the ones skipped and why, and whether the map is still degenerate
(only when every entry failed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor

from drscreen.explain.saliency import CAMNotApplicableError, SaliencyMethod, create_saliency
from drscreen.explain.targets import (
    DRGradeTarget,
    ReferableLogOddsTarget,
    ReferableTarget,
    Target,
    TargetError,
)
from drscreen.models.base import DRModel

#: The scores an explanation method can explain, by the name used in records and results.
EXPLANATION_TARGETS: Mapping[str, Target] = {
    "referable": ReferableTarget(),
    "referable-logodds": ReferableLogOddsTarget(),
    "predicted-grade": DRGradeTarget(),
}


@dataclass(frozen=True)
class ExplanationMethod:
    """A saliency method with its settings and the score it explains.

    Attributes:
        method: a registered saliency method (``list_saliency_methods()``).
        target: a key of ``EXPLANATION_TARGETS``.
        settings: keyword arguments of the method as sorted (name, value) pairs, e.g.
            ``(("gate", 0.0),)`` for GMSM.
    """

    method: str
    target: str
    settings: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.target not in EXPLANATION_TARGETS:
            raise ValueError(f"unknown target {self.target!r}; known: {sorted(EXPLANATION_TARGETS)}")
        object.__setattr__(self, "settings", tuple(sorted(self.settings)))

    @property
    def label(self) -> str:
        """Short name, e.g. ``gmsm(gate=0)``: the method and its settings (not the target)."""
        arguments = ", ".join(f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
                              for key, value in self.settings)
        return f"{self.method}({arguments})" if arguments else self.method

    def explainer(self, model: DRModel) -> SaliencyMethod:
        """The configured saliency method for ``model``."""
        return create_saliency(self.method, model, **dict(self.settings))


#: The default explanation (chosen on the real IDRiD subset; docs/explainability.md).
DEFAULT_EXPLANATION = ExplanationMethod("gmsm", "referable", (("gate", 0.0),))
#: Tried in order when the entry before gives a degenerate map or does not apply to the model:
#: the same method on the log-odds (no vanishing gradient on confidently referable images), CAM
#: (no clipping: constant only when the activations are), Grad-CAM (for heads CAM cannot read).
FALLBACK_EXPLANATIONS: tuple[ExplanationMethod, ...] = (
    ExplanationMethod("gmsm", "referable-logodds", (("gate", 0.0),)),
    ExplanationMethod("cam", "referable-logodds"),
    ExplanationMethod("gradcam", "referable-logodds"),
)


def is_degenerate(saliency: np.ndarray) -> bool:
    """Whether a map (H, W) carries no location: a non-finite value, or one value everywhere."""
    values = np.asarray(saliency)
    return bool(not np.isfinite(values).all() or values.max() == values.min())


@dataclass(frozen=True, eq=False)
class Explanation:
    """One image's explanation.

    Attributes:
        map: (S, S) float32 in [0, 1], in the network-input grid (``to_original_geometry``
            places it on the photograph).
        method: label of the method that made ``map`` (``ExplanationMethod.label``).
        target: the explained score (a key of ``EXPLANATION_TARGETS``).
        settings: that method's settings.
        degenerate: True when ``map`` carries no location (every method of the chain failed);
            ``map`` is then all zeros, ``method`` the last one tried and ``peak`` None.
        fallback: True when ``method`` is not the first method of the chain.
        skipped: ``"<label> [<target>]: <reason>"`` for every method tried that did not give
            the map (when degenerate: all of them, ``method`` included).
        peak: (row, column) of the map's maximum (the first one), None when degenerate.
    """

    map: np.ndarray
    method: str
    target: str
    settings: dict[str, Any]
    degenerate: bool
    fallback: bool
    skipped: tuple[str, ...] = ()
    peak: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Everything but the map, as JSON-ready values."""
        return {
            "method": self.method,
            "target": self.target,
            "settings": dict(self.settings),
            "degenerate": self.degenerate,
            "fallback": self.fallback,
            "skipped": list(self.skipped),
            "peak": list(self.peak) if self.peak is not None else None,
        }


def explain_default(
    model: DRModel,
    image: Tensor,
    chain: Sequence[ExplanationMethod] | None = None,
) -> Explanation:
    """Explain one network input (3, S, S) or (1, 3, S, S), normalised for ``model``.

    Runs ``chain`` (default: ``DEFAULT_EXPLANATION`` then ``FALLBACK_EXPLANATIONS``) in order and
    returns the first map that is not degenerate. A method that does not apply to the model
    (``CAMNotApplicableError``, ``TargetError``) is skipped like a degenerate one. When none
    succeeds, the record says ``degenerate=True`` and carries an all-zero map and the last
    method tried; when none even applies, ``ValueError`` lists the reasons.
    """
    batch = image[None] if image.ndim == 3 else image
    if batch.ndim != 4 or batch.shape[0] != 1:
        raise ValueError(f"expected one image (3, S, S) or (1, 3, S, S), got {tuple(image.shape)}")
    methods = tuple(chain) if chain is not None else (DEFAULT_EXPLANATION, *FALLBACK_EXPLANATIONS)
    if not methods:
        raise ValueError("the explanation chain is empty")
    skipped: list[str] = []
    last: ExplanationMethod | None = None
    for position, entry in enumerate(methods):
        name = f"{entry.label} [{entry.target}]"
        try:
            saliency = entry.explainer(model)(batch, EXPLANATION_TARGETS[entry.target])[0]
        except (CAMNotApplicableError, TargetError) as error:
            skipped.append(f"{name}: not applicable ({error})")
            continue
        values = saliency.detach().cpu().numpy().astype(np.float32)
        last = entry
        if is_degenerate(values):
            kind = "not finite" if not np.isfinite(values).all() else "constant map"
            skipped.append(f"{name}: degenerate ({kind})")
            continue
        row, column = np.unravel_index(int(values.argmax()), values.shape)
        return Explanation(
            map=values,
            method=entry.label,
            target=entry.target,
            settings=dict(entry.settings),
            degenerate=False,
            fallback=position > 0,
            skipped=tuple(skipped),
            peak=(int(row), int(column)),
        )
    if last is None:
        raise ValueError("no explanation method applies to this model: " + "; ".join(skipped))
    return Explanation(
        map=np.zeros(batch.shape[-2:], np.float32),
        method=last.label,
        target=last.target,
        settings=dict(last.settings),
        degenerate=True,
        fallback=last != methods[0],
        skipped=tuple(skipped),
    )
