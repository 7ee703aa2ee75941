"""drscreen's shipped default model: packing a trained run into a file, and loading it offline.

The package carries one trained model, ``drscreen/weights/drscreen_default.pt`` (fp16 weights,
model card in docs/model_card.md). ``load_pretrained()`` reads it with no network access;
``load_pretrained(path)`` reads any file that ``pack_checkpoint`` wrote.

A packed file is a ``torch.save`` dict of plain types and tensors (loadable with
``weights_only=True``):

* ``format``: ``PACK_FORMAT``;
* ``model``: ``{"name": registry name, "kwargs": create_model settings}`` (``pretrained``
  forced off: the weights are in the file);
* ``state_dict``: the weights, floating tensors stored as fp16;
* ``preprocess``: the ``PreprocessConfig`` the model was trained with (how its training images
  became inputs);
* ``photograph_preprocess``: the ``PreprocessConfig`` that turns a camera photograph into such an
  input (may equal ``preprocess``);
* ``dr_decoding``: how the predicted DR grade is read from the grade probabilities
  (``drscreen.grading.decode_grades``), as the model was validated;
* ``temperature``: the calibration temperature ``T`` fitted on validation data (absent in older
  files: 1). ``load_pretrained`` makes the loaded network return ``dr_logits / T``, so every
  probability computed from it (``drscreen.inference``) is the calibrated one;
* ``info``: free metadata (training data and command, validation metrics, which outputs were
  validated on real data).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from drscreen.models.base import DRModel
from drscreen.models.output import ModelOutput
from drscreen.models.registry import create_model
from drscreen.preprocess import PreprocessConfig

#: Version of the packed-file layout.
PACK_FORMAT = 1
#: The weights shipped inside the package.
DEFAULT_MODEL_FILE = Path(__file__).resolve().parents[1] / "weights" / "drscreen_default.pt"
#: The shipped lesion model (the grader's lesion decoder fine-tuned at 512 px on real and synthetic
#: lesions; docs/model_card.md, "Lesion model"): the Screener's lesion findings, overlays and optic disc.
DEFAULT_LESION_MODEL_FILE = Path(__file__).resolve().parents[1] / "weights" / "drscreen_lesions.pt"
#: The shipped lesion segmenter (u2net_xs, 512 px; docs/model_card.md), used by the Screener for
#: lesion findings, overlays and the optic disc.


@dataclass
class PretrainedModel:
    """A packed model ready for inference.

    ``model``: fp32, eval mode, on the requested device. ``preprocess``: input preparation as in
    training; ``photograph_preprocess``: for camera photographs. ``dr_decoding``: the DR grade
    rule (``drscreen.grading.decode_grades``). ``info``: the file's metadata. ``temperature``:
    the calibration temperature its DR logits are divided by (already applied by ``model``).
    """

    model: DRModel
    preprocess: PreprocessConfig
    photograph_preprocess: PreprocessConfig
    dr_decoding: str = "argmax"
    info: dict[str, Any] = field(default_factory=dict)
    temperature: float = 1.0


def apply_dr_temperature(model: nn.Module, temperature: float) -> None:
    """Make ``model`` return its DR logits divided by ``temperature`` (a forward hook; in place).
    Temperature 1 leaves the model untouched."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if temperature == 1.0:
        return

    def scale(_module: nn.Module, _inputs: Any, output: ModelOutput) -> ModelOutput:
        if output.dr_logits is None:
            return output
        return dataclasses.replace(output, dr_logits=output.dr_logits / temperature)

    model.register_forward_hook(scale)


def pack_checkpoint(
    checkpoint: dict[str, Any],
    out: str | Path,
    *,
    photograph_preprocess: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    temperature: float = 1.0,
) -> Path:
    """Write the engine checkpoint ``checkpoint`` (a ``best.pt`` / ``last.pt`` dict holding
    ``model`` and the resolved ``config``) as a packed file at ``out``; returns ``out``.

    ``photograph_preprocess``: settings overriding the training preprocessing for photographs
    (e.g. ``{"crop_to_fov": True, "enhancement": "ben_graham"}``); ``None`` keeps it.
    ``temperature``: the DR-logit calibration temperature (``drscreen.metrics.calibration``).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    try:
        config, state = checkpoint["config"], checkpoint["model"]
    except KeyError as missing:
        raise ValueError(f"not an engine checkpoint: no {missing} entry") from None
    model_config = config["model"]
    kwargs = {**model_config.get("kwargs", {}), "pretrained": False}
    model = create_model(model_config["name"], **kwargs)
    model.load_state_dict(state)
    preprocess = PreprocessConfig.for_model(config["data"].get("preprocess", {}), model.normalization)
    photograph = PreprocessConfig.from_dict({**preprocess.to_dict(), **(photograph_preprocess or {})})
    payload = {
        "format": PACK_FORMAT,
        "model": {"name": model_config["name"], "kwargs": kwargs},
        "state_dict": {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
        "preprocess": preprocess.to_dict(),
        "photograph_preprocess": photograph.to_dict(),
        "dr_decoding": model_config.get("dr_decoding", "argmax"),
        "temperature": float(temperature),
        "info": info or {},
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out)
    return out


def load_pretrained(path: str | Path | None = None, *, device: str | torch.device = "cpu") -> PretrainedModel:
    """The packed model at ``path`` (default: the shipped ``DEFAULT_MODEL_FILE``), offline."""
    path = Path(path) if path is not None else DEFAULT_MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"packed model not found: {path}"
            + (" (the installed package lacks its weights)" if path == DEFAULT_MODEL_FILE else "")
        )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != PACK_FORMAT:
        raise ValueError(f"{path}: not a packed drscreen model (format {PACK_FORMAT})")
    spec = payload["model"]
    model = create_model(spec["name"], **spec["kwargs"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()})
    temperature = float(payload.get("temperature", 1.0))
    apply_dr_temperature(model, temperature)
    model.to(device).eval()
    return PretrainedModel(
        model=model,
        preprocess=PreprocessConfig.from_dict(payload["preprocess"]),
        photograph_preprocess=PreprocessConfig.from_dict(payload["photograph_preprocess"]),
        dr_decoding=payload.get("dr_decoding", "argmax"),
        info=payload["info"],
        temperature=temperature,
    )
