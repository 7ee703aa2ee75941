"""SUNet and the split-backbone multi-task baselines it is compared with.

Reference: Zhi Tu, Shenghua Gao, Kang Zhou, Xianing Chen, Huazhu Fu, Zaiwang Gu, Jun Cheng,
Zehao Yu and Jiang Liu, "SUNet: a lesion regularized model for simultaneous diabetic retinopathy
and diabetic macular edema grading".

SUNet grades DR and DME together. A backbone (ResNet-34 in the paper) yields one deep map
``M_0``; the Feature Blending Block alternates *separation* steps, which turn ``M_j`` into a
lesion map ``L_j`` and a diagnosis map ``D_j``, with *union* steps, which merge the pair back
into ``M_{j+1}``. Every ``L_j`` is fused by a 1x1 convolution into ``L`` and every ``D_j`` into
``D``. ``D`` feeds one small classifier per disease (Multi-Disease Diagnosis Block) and ``L``
feeds the Lesion Regularizer Net, an upsampling decoder supervised with lesion masks whenever
a training image has them.

The paper's baselines that split one shared backbone into a DR and a DME branch at an early,
middle or late stage are ``MultiTaskSplit`` (registered ``multitask_split``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from drscreen.grading import NUM_DME_GRADES, NUM_DR_GRADES, SEGMENTATION_LESIONS
from drscreen.models.base import DRModel, ExplainLayers
from drscreen.models.encoders.common import encoder_stages
from drscreen.models.encoders.simple_cnn import TINY_WIDTHS
from drscreen.models.layers import ConvBNReLU, ceil_size, resize
from drscreen.models.output import ModelOutput
from drscreen.models.registry import create_encoder, register_model

TASKS: tuple[str, ...] = ("dr", "dme")
_PAPER = (
    "Tu, Gao, Zhou, Chen, Fu, Gu, Cheng, Yu, Liu: SUNet: a lesion regularized model for "
    "simultaneous diabetic retinopathy and diabetic macular edema grading"
)


class BlendStep(nn.Module):
    """One separation step ``S_j`` and, unless it is the last step, the union ``U`` after it.

    Separation: ``L_j = SL_j(M_j)`` and ``D_j = SD_j(M_j)`` (3x3 conv-BN-ReLU each).
    Union: ``M_{j+1} = U(L_j, D_j)``, a 3x3 conv-BN-ReLU over the channel concatenation
    ``[L_j; D_j]`` (see ``SUNet`` for why). A step without a consumer of ``L_j`` (the last one
    when there is no lesion regularizer) builds no lesion layer.

    Args:
        in_channels: channels of ``M_j``.
        channels: channels of ``L_j``, ``D_j`` and ``M_{j+1}``.
        lesion: build ``SL_j``.
        union: build ``U`` (needs ``lesion``).
    """

    def __init__(self, in_channels: int, channels: int, *, lesion: bool, union: bool) -> None:
        super().__init__()
        if union and not lesion:
            raise ValueError("a union step needs the lesion map of its separation step")
        self.diagnosis = ConvBNReLU(in_channels, channels)
        self.lesion = ConvBNReLU(in_channels, channels) if lesion else None
        self.union = ConvBNReLU(2 * channels, channels) if union else None

    def forward(self, m: Tensor) -> tuple[Tensor | None, Tensor, Tensor | None]:
        """(B, C_in, h, w) -> ``(L_j, D_j, M_{j+1})``, each (B, channels, h, w) or ``None``."""
        d = self.diagnosis(m)
        lesion = self.lesion(m) if self.lesion is not None else None
        if self.union is None or lesion is None:
            return lesion, d, None
        return lesion, d, self.union(torch.cat([lesion, d], dim=1))


class FeatureBlendingBlock(nn.Module):
    """F-Block: ``num_steps`` separation steps joined by ``num_steps - 1`` union steps.

    ``D`` is a 1x1 conv-BN-ReLU over the concatenation of all ``D_j``; ``L`` likewise over all
    ``L_j`` (only built when ``lesion_output``). Spatial size is kept throughout.

    Args:
        in_channels: channels of ``M_0`` (the backbone's deepest map).
        channels: width of every map inside the block and of ``L`` and ``D``.
        num_steps: number of separation steps ``N`` (>= 1).
        lesion_output: produce ``L`` (needed by the lesion regularizer).
    """

    def __init__(
        self, in_channels: int, channels: int, num_steps: int, *, lesion_output: bool
    ) -> None:
        super().__init__()
        if num_steps < 1:
            raise ValueError(f"num_blend_steps must be >= 1, got {num_steps}")
        last = num_steps - 1
        self.steps = nn.ModuleList(
            BlendStep(
                in_channels if j == 0 else channels,
                channels,
                lesion=lesion_output or j < last,
                union=j < last,
            )
            for j in range(num_steps)
        )
        self.fuse_d = ConvBNReLU(num_steps * channels, channels, kernel_size=1)
        self.fuse_l = (
            ConvBNReLU(num_steps * channels, channels, kernel_size=1) if lesion_output else None
        )

    def forward(self, m: Tensor) -> tuple[Tensor | None, Tensor]:
        """``M_0`` (B, C_in, h, w) -> ``(L, D)``, each (B, channels, h, w); ``L`` can be None."""
        lesion_maps: list[Tensor] = []
        diagnosis_maps: list[Tensor] = []
        for step in self.steps:
            lesion, d, m_next = step(m)
            diagnosis_maps.append(d)
            if lesion is not None:
                lesion_maps.append(lesion)
            if m_next is not None:
                m = m_next
        d_all = self.fuse_d(torch.cat(diagnosis_maps, dim=1))
        if self.fuse_l is None:
            return None, d_all
        return self.fuse_l(torch.cat(lesion_maps, dim=1)), d_all


class DiseaseClassifier(nn.Sequential):
    """One MD-Block classifier: 3x3 conv, global max pool, ReLU, linear; (B, C, h, w) -> (B, K)."""

    def __init__(self, in_channels: int, hidden: int, num_classes: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1),
            nn.AdaptiveMaxPool2d(1),
            nn.ReLU(inplace=True),
            nn.Flatten(1),
            nn.Linear(hidden, num_classes),
        )


class LesionRegularizer(nn.Module):
    """LR-Net: ``num_upsamples`` times (bilinear x2, 3x3 conv-BN-ReLU), then a 1x1 classifier.

    Stage ``i`` has ``max(channels // 2**i, num_outputs)`` channels, so every stage compresses
    its input (never below the output channel count). The last stage is resized to exactly
    ``out_size``; the ones before to ``ceil(out_size / 2**k)``, so odd sizes work too.

    Args:
        in_channels: channels of ``L``.
        channels: channels of the first upsampling stage.
        num_upsamples: number of x2 stages.
        num_outputs: output channels (lesion classes + background).
    """

    def __init__(
        self, in_channels: int, channels: int, num_upsamples: int, num_outputs: int
    ) -> None:
        super().__init__()
        widths = [max(channels // 2**i, num_outputs) for i in range(num_upsamples)]
        self.stages = nn.ModuleList(
            ConvBNReLU(c_in, c_out) for c_in, c_out in zip([in_channels, *widths], widths)
        )
        self.classifier = nn.Conv2d(widths[-1] if widths else in_channels, num_outputs, 1)

    def forward(self, lesion: Tensor, out_size: tuple[int, int]) -> Tensor:
        """(B, C, h, w) -> (B, num_outputs, *out_size) logits."""
        n = len(self.stages)
        for i, stage in enumerate(self.stages):
            lesion = stage(resize(lesion, ceil_size(out_size, 2 ** (n - 1 - i))))
        return self.classifier(lesion)


@register_model(
    "sunet",
    paper=_PAPER,
    description=(
        "ResNet-34 -> Feature Blending Block (alternating separation / union steps) -> DR and DME "
        "classifiers on D, lesion regularizer (softmax lesion masks) on L; tasks= and "
        "lesion_regularizer= give the paper's ablation variants"
    ),
    tiny={
        "encoder": "simple_cnn",
        "encoder_kwargs": {"widths": TINY_WIDTHS},
        "num_blend_steps": 2,
        "blend_channels": 16,
        "head_channels": 16,
        "lr_channels": 8,
    },
)
class SUNet(DRModel):
    """SUNet (Tu et al.): backbone -> F-Block -> MD-Block (DR, DME) and LR-Net (lesion masks).

    Input (B, 3, H, W); outputs ``dr_logits`` (B, 5) and ``dme_logits`` (B, 3) for the tasks in
    ``tasks`` (the other is ``None``), ``lesion_logits`` (B, 1 + C, ceil(H / lesion_stride),
    ceil(W / lesion_stride)) when ``lesion_regularizer`` (else ``None``), ``embedding`` =
    global average of ``D`` (B, blend_channels).

    Paper-faithfulness choices:
        * Eq. 1 of the paper feeds ``L_j`` to ``SL_j``; that is a typo (``L_j`` is what it
          produces), so both ``SL_j`` and ``SD_j`` read ``M_j``.
        * The union ``U`` (eq. 2) is described only as 3x3 conv-BN-ReLU layers applied to
          the two maps (the text's ``SM_j``); it is implemented as one 3x3 conv-BN-ReLU over
          the channel concatenation ``[L_j; D_j]``, which can learn a sum, a weighting or any
          other mix of the two (an element-wise sum would be a special case).
        * ``N`` separation steps need only ``N - 1`` unions (``M_N`` would have no consumer).
          The paper does not give ``N``; the default is 3.
        * The LR loss (paper eq. 4) is a categorical cross entropy over lesion categories, so
          the LR output is a softmax map with a leading background channel (IDRiD masks that
          overlap are resolved by the loss/target code, not here).
        * ``L`` and ``D`` are 1x1 convolutions (as in the paper) followed by BN and ReLU like
          every other conv of the block.
        * Each MD-Block classifier is conv, max pooling, ReLU as listed in the paper; the
          pooling is global and a linear layer turns the pooled vector into logits.

    Args:
        encoder: registered encoder name; its deepest map is ``M_0`` (paper: ResNet-34).
        encoder_kwargs: extra settings of that encoder, passed to ``create_encoder``.
        pretrained: passed to the encoder.
        tasks: subset of ``("dr", "dme")`` graded (the paper's DR / DME / DR+DME ablations);
            a single name such as ``"dr"`` is accepted.
        lesion_regularizer: build the LR-Net (``False``: the paper's "without LR" ablations).
        lesion_classes: lesion codes of the LR-Net output after the background channel.
        num_blend_steps: ``N``, number of separation steps.
        blend_channels: width of the F-Block maps, ``L`` and ``D``.
        head_channels: conv width of each disease classifier.
        lr_channels: width of the first LR-Net stage (halved at each later stage).
        lesion_stride: LR output stride relative to the input (1 = input resolution); a power
            of two not larger than the encoder's deepest reduction.
    """

    lesion_activation = "softmax"

    def __init__(
        self,
        encoder: str = "resnet34",
        *,
        encoder_kwargs: dict[str, Any] | None = None,
        pretrained: bool = False,
        tasks: Sequence[str] = TASKS,
        lesion_regularizer: bool = True,
        lesion_classes: Sequence[str] = SEGMENTATION_LESIONS,
        num_blend_steps: int = 3,
        blend_channels: int = 256,
        head_channels: int = 256,
        lr_channels: int = 128,
        lesion_stride: int = 1,
    ) -> None:
        super().__init__()
        self.tasks = _check_tasks(tasks)
        self.encoder = create_encoder(encoder, pretrained=pretrained, **(encoder_kwargs or {}))
        self.normalization = self.encoder.normalization
        self.blend = FeatureBlendingBlock(
            self.encoder.out_channels[-1],
            blend_channels,
            num_blend_steps,
            lesion_output=lesion_regularizer,
        )
        self.dr_head: DiseaseClassifier | None = None
        self.dme_head: DiseaseClassifier | None = None
        if "dr" in self.tasks:
            self.dr_head = DiseaseClassifier(blend_channels, head_channels, NUM_DR_GRADES)
        if "dme" in self.tasks:
            self.dme_head = DiseaseClassifier(blend_channels, head_channels, NUM_DME_GRADES)
        self.lesion_stride = lesion_stride
        self.lr_net: LesionRegularizer | None = None
        self.lesion_classes = ()
        if lesion_regularizer:
            self.lesion_classes = tuple(lesion_classes)
            num_upsamples = _num_upsamples(self.encoder.reductions[-1], lesion_stride)
            self.lr_net = LesionRegularizer(
                blend_channels, lr_channels, num_upsamples, len(self.lesion_classes) + 1
            )
        self.explain_layers = ExplainLayers(
            low=f"encoder.{self.encoder.feature_modules[-2]}", high="blend.fuse_d"
        )

    def forward(self, images: Tensor) -> ModelOutput:
        """(B, 3, H, W) normalised images -> ``ModelOutput`` (see the class docstring)."""
        lesion, d = self.blend(self.encoder(images)[-1])
        lesion_logits = None
        if self.lr_net is not None and lesion is not None:
            lesion_logits = self.lr_net(lesion, ceil_size(images.shape[-2:], self.lesion_stride))
        return ModelOutput(
            dr_logits=self.dr_head(d) if self.dr_head is not None else None,
            dme_logits=self.dme_head(d) if self.dme_head is not None else None,
            lesion_logits=lesion_logits,
            embedding=d.mean(dim=(2, 3)),
        )


def _check_tasks(tasks: Sequence[str]) -> tuple[str, ...]:
    """``tasks`` as a tuple in canonical order; raises ``ValueError`` if empty or unknown."""
    if isinstance(tasks, str):
        tasks = (tasks,)
    unknown = set(tasks) - set(TASKS)
    if unknown or not tasks:
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {tuple(tasks)!r}")
    return tuple(t for t in TASKS if t in tasks)


def _num_upsamples(reduction: int, stride: int) -> int:
    """Number of x2 steps from an encoder map at ``reduction`` to output ``stride``."""
    ratio = reduction // stride if stride > 0 else 0
    if stride < 1 or ratio * stride != reduction or ratio & (ratio - 1):
        raise ValueError(
            f"lesion_stride must be a power of two dividing the encoder reduction {reduction}, "
            f"got {stride}"
        )
    return ratio.bit_length() - 1


#: Number of trailing encoder stages each task gets its own copy of, per split point.
_BRANCH_STAGES: dict[str, int] = {"early": 3, "middle": 2, "late": 1}


@register_model(
    "multitask_split",
    paper=_PAPER,
    description=(
        "The SUNet paper's multi-task baselines: a ResNet-34 shared up to an early / middle / "
        "late stage, then separate copies of the remaining stages and a linear head for DR "
        "and for DME"
    ),
    tiny={"encoder": "simple_cnn", "encoder_kwargs": {"widths": TINY_WIDTHS}},
)
class MultiTaskSplit(DRModel):
    """Shared backbone trunk, then one branch per disease (Tu et al.'s early/middle/late baselines).

    With the 5 stages of a drscreen encoder (ResNet-34: stem, layer1 ... layer4) the trunk
    keeps the first 2 (``"early"``, split after layer1, stride 4), 3 (``"middle"``, after
    layer2, stride 8) or 4 (``"late"``, after layer3, stride 16) stages; the DR branch holds
    the remaining stages and the DME branch an independent copy of them. Each branch ends in
    global average pooling and a linear layer (the paper's ResNet baselines use one softmax
    classifier per disease).

    Input (B, 3, H, W) -> ``dr_logits`` (B, 5), ``dme_logits`` (B, 3), ``embedding`` = the
    concatenated pooled DR and DME features (B, 2 * C_last). No lesion output.

    Args:
        encoder: registered encoder name (paper: ResNet-34).
        encoder_kwargs: extra settings of that encoder, passed to ``create_encoder``.
        pretrained: passed to the encoder.
        split: ``"early"``, ``"middle"`` or ``"late"``.
    """

    def __init__(
        self,
        encoder: str = "resnet34",
        *,
        encoder_kwargs: dict[str, Any] | None = None,
        pretrained: bool = False,
        split: Literal["early", "middle", "late"] = "middle",
    ) -> None:
        super().__init__()
        if split not in _BRANCH_STAGES:
            raise ValueError(f"split must be one of {tuple(_BRANCH_STAGES)}, got {split!r}")
        backbone = create_encoder(encoder, pretrained=pretrained, **(encoder_kwargs or {}))
        self.normalization = backbone.normalization
        self.split = split
        stages = encoder_stages(backbone)
        num_shared = len(stages) - _BRANCH_STAGES[split]
        if num_shared < 1:
            raise ValueError(
                f"split={split!r} needs an encoder with more than {_BRANCH_STAGES[split]} levels, "
                f"{encoder!r} has {len(stages)}"
            )
        self.shared = nn.Sequential(*stages[:num_shared])
        self.dr_branch = nn.Sequential(*stages[num_shared:])
        self.dme_branch = copy.deepcopy(self.dr_branch)
        channels = backbone.out_channels[-1]
        self.dr_head = nn.Linear(channels, NUM_DR_GRADES)
        self.dme_head = nn.Linear(channels, NUM_DME_GRADES)
        self.explain_layers = ExplainLayers(
            low=f"shared.{num_shared - 1}", high=f"dr_branch.{len(self.dr_branch) - 1}"
        )

    def forward(self, images: Tensor) -> ModelOutput:
        """(B, 3, H, W) normalised images -> ``ModelOutput`` with DR, DME logits and embedding."""
        trunk = self.shared(images)
        dr = self.dr_branch(trunk).mean(dim=(2, 3))
        dme = self.dme_branch(trunk).mean(dim=(2, 3))
        return ModelOutput(
            dr_logits=self.dr_head(dr),
            dme_logits=self.dme_head(dme),
            embedding=torch.cat([dr, dme], dim=1),
        )
