"""Helpers shared by the encoder modules."""

from __future__ import annotations


def require_no_pretrained(name: str, pretrained: bool, hint: str) -> None:
    """Raise ``ValueError`` when ``pretrained`` is asked of an encoder without offline weights.

    drscreen never downloads: the only weights shipped offline are EfficientNet-Lite's. ``hint``
    tells the user how to turn published weights into a state dict of this encoder.
    """
    if pretrained:
        raise ValueError(
            f"encoder {name!r} has no offline pretrained weights and drscreen never downloads. "
            f"Pass checkpoint='path/to/weights.pth' to create_encoder / create_model instead "
            f"(a state dict of this encoder; {hint})."
        )
