"""Several data sources in one run: source-balanced training order and per-source validation.

A sample's source is its ``Sample.dataset`` (``aptos2019``, ``eyepacs``, ...). With
``data.balance_sources`` every training epoch draws as many images from each source
(``SourceBalancedSampler``), and validation reports every metric per source
(``per_source_metrics``: ``<source>_<metric>``) and their mean over sources
(``sources_mean_<metric>``), which ``train.monitor`` may name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from drscreen.data import Sample
from drscreen.engine.inference import Predictions, compute_metrics
from drscreen.engine.samplers import shard

#: Prefix of the metrics averaged over sources.
SOURCES_MEAN = "sources_mean"


def sources_of(samples: Sequence[Sample]) -> dict[str, list[int]]:
    """Indices of ``samples`` grouped by source (``Sample.dataset``), sources in first-seen order."""
    groups: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        groups.setdefault(sample.dataset, []).append(index)
    return groups


class SourceBalancedSampler(Sampler[int]):
    """Training order with an equal share of every source in each epoch.

    An epoch has ``len(samples)`` draws (rounded down to a multiple of the number of sources),
    taken in turn from each source: a small source is reshuffled and repeated, a large one is
    seen in part (a different part each epoch). The order is a pure function of
    (seed, epoch, rank, world size), so a resumed run sees the same batches; it is sharded over
    ranks like ``DistributedSampler``.
    """

    def __init__(self, samples: Sequence[Sample], *, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.groups = list(sources_of(samples).values())
        if not self.groups:
            raise ValueError("source-balanced sampling needs at least one sample")
        self.per_source = len(samples) // len(self.groups)
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the order of ``epoch`` (call before iterating)."""
        self.epoch = epoch

    def epoch_order(self) -> list[int]:
        """All ranks' draws of the current epoch, sources interleaved."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        streams = []
        for group in self.groups:
            repeats = -(-self.per_source // len(group))
            drawn = [group[i] for _ in range(repeats) for i in torch.randperm(len(group), generator=generator).tolist()]
            streams.append(drawn[: self.per_source])
        return [stream[step] for step in range(self.per_source) for stream in streams]

    def __iter__(self) -> Iterator[int]:
        return iter(shard(self.epoch_order(), self.rank, self.world_size))

    def __len__(self) -> int:
        return -(-self.per_source * len(self.groups) // self.world_size)


def subset_predictions(predictions: Predictions, indices: Sequence[int]) -> Predictions:
    """The part of ``predictions`` for the dataset indices ``indices`` (those it holds)."""
    rows = np.flatnonzero(np.isin(predictions.indices, np.asarray(indices)))
    kept = set(predictions.indices[rows].tolist())
    return Predictions(
        indices=predictions.indices[rows],
        dr_probs=None if predictions.dr_probs is None else predictions.dr_probs[rows],
        dme_probs=None if predictions.dme_probs is None else predictions.dme_probs[rows],
        lesions={i: v for i, v in predictions.lesions.items() if i in kept},
        loss=predictions.loss,
    )


def per_source_metrics(
    predictions: Predictions,
    samples: Sequence[Sample],
    lesion_classes: Sequence[str],
    *,
    dr_decoding: str = "argmax",
) -> dict[str, float]:
    """``<source>_<metric>`` for every source of ``samples`` and ``sources_mean_<metric>``, the mean
    over the sources that have the metric (``compute_metrics`` names; ``loss`` is left out, it is
    not computed per image)."""
    flat: dict[str, float] = {}
    by_metric: dict[str, list[float]] = {}
    for source, indices in sources_of(samples).items():
        metrics, _ = compute_metrics(
            subset_predictions(predictions, indices), samples, lesion_classes, dr_decoding=dr_decoding
        )
        for name, value in metrics.items():
            if name == "loss":
                continue
            flat[f"{source}_{name}"] = value
            by_metric.setdefault(name, []).append(value)
    flat.update({f"{SOURCES_MEAN}_{name}": float(np.mean(values)) for name, values in by_metric.items()})
    return flat
