"""Metric-learning loss on the image embedding: SoftTriple (multi-centre softmax)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from drscreen.losses.registry import register_loss


@register_loss(
    "softtriple",
    paper="Qian et al., SoftTriple Loss: Deep Metric Learning Without Triplet Sampling "
    "(ICCV 2019); Tian et al.",
    description="K learnable centres per class, scale lambda, margin delta, centre-merging "
    "regulariser",
)
class SoftTripleLoss(nn.Module):
    """SoftTriple loss with its own learnable class centres.

    Qian et al. ("SoftTriple Loss: Deep Metric Learning Without Triplet Sampling") show that a
    normalised softmax is a smoothed triplet loss with one centre per class and extend it to K
    centres per class; Tian et al. add it to the DR grading loss to shape the embedding space.
    With the embedding ``x`` and every centre ``w_c^k`` L2-normalised:

    - relaxed class similarity ``S_c = sum_k softmax_k(x.w_c^k / gamma) * x.w_c^k``;
    - loss ``= CE(lam * (S - delta * onehot(y)), y)`` (the margin only on the true class);
    - plus ``tau * R``, ``R = sum_c sum_{t<s} sqrt(2 - 2 w_c^t.w_c^s) / (C K (K - 1))``, which
      pulls the centres of a class together so that redundant ones merge (zero when K = 1).

    The centres are parameters of this module: give ``loss.parameters()`` to the optimiser.

    Shapes: ``embedding`` (B, D) float (normalised here), ``target`` (B,) int64 in ``[0, C)``.
    Returns a scalar: the batch mean of the softmax term plus ``tau * R``.

    Args:
        dim: embedding size D (``ModelOutput.embedding.shape[1]``).
        num_classes: C (5 ICDR grades by default).
        centers_per_class: K.
        lam: scale of the similarities (the paper's lambda).
        gamma: temperature of the soft assignment over a class's centres.
        delta: margin subtracted from the true class's similarity.
        tau: weight of the centre-merging regulariser.
    """

    def __init__(
        self,
        dim: int,
        num_classes: int = 5,
        centers_per_class: int = 10,
        lam: float = 20.0,
        gamma: float = 0.1,
        delta: float = 0.01,
        tau: float = 0.2,
    ) -> None:
        super().__init__()
        if dim < 1 or num_classes < 2 or centers_per_class < 1 or gamma <= 0:
            raise ValueError(
                "softtriple needs dim >= 1, num_classes >= 2, centers_per_class >= 1 and gamma > 0"
            )
        self.lam, self.gamma, self.delta, self.tau = lam, gamma, delta, tau
        self.centers = nn.Parameter(torch.randn(num_classes, centers_per_class, dim))

    def similarities(self, embedding: Tensor) -> Tensor:
        """Relaxed similarity ``S`` of each embedding to each class: (B, D) -> (B, C), float32.

        Computed in float32 whatever the autocast dtype: cosine similarities scaled by ``lam``
        lose too much in 16 bits, and CPU autocast leaves ``einsum`` with mixed input dtypes.
        """
        x = F.normalize(embedding.float(), dim=1)
        w = F.normalize(self.centers.float(), dim=2)
        sim = torch.einsum("bd,ckd->bck", x, w)
        assignment = torch.softmax(sim / self.gamma, dim=2)
        return (assignment * sim).sum(dim=2)

    def regularizer(self) -> Tensor:
        """Mean distance between centres of the same class, ``R`` above (a scalar)."""
        num_classes, k, _ = self.centers.shape
        if k == 1:
            return self.centers.new_zeros(())
        w = F.normalize(self.centers, dim=2)
        gram = w @ w.transpose(1, 2)
        upper = torch.triu(torch.ones(k, k, dtype=torch.bool, device=gram.device), diagonal=1)
        # The small floor keeps the square root differentiable when two centres coincide.
        dist = (2.0 - 2.0 * gram[:, upper]).clamp_min(1e-12).sqrt()
        return dist.sum() / (num_classes * k * (k - 1))

    def forward(self, embedding: Tensor, target: Tensor) -> Tensor:
        sim = self.similarities(embedding)
        margin = F.one_hot(target, sim.shape[1]).to(sim.dtype) * self.delta
        loss = F.cross_entropy(self.lam * (sim - margin), target)
        if self.tau:
            loss = loss + self.tau * self.regularizer()
        return loss
