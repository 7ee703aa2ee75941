"""The training loop: stages of epochs with AMP, checkpoints, exact resume, validation, early stopping.

A run is a sequence of *stages* (one for the ``standard`` and ``alternate`` schedules, several
for ``pseudo_masks`` and ``rounds``; see ``drscreen.engine.schedules``). Each stage trains the
same model on its own training samples with a fresh optimiser and learning-rate schedule, and
hands its best validation weights (its last weights when it was never validated on the
monitored metric) to the next stage.

With ``train.ema_decay`` a stage also keeps an exponential moving average of the weights
(``torch.optim.swa_utils.AveragedModel``); the averaged weights are the ones validated, saved as
best and handed on.

Files (rank 0 only) under the run folder: ``checkpoints/last.pt`` (everything needed to resume
exactly: stage, epoch, model, weight average, loss, optimiser, scheduler, grad scaler, RNG states
of every rank, early-stopping state, the stage's training samples and the log history),
``checkpoints/best.pt`` (weights of the current stage's best epoch), ``log.csv``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from drscreen.data import Sample
from drscreen.engine.checkpoint import capture_rng, read_checkpoint, restore_rng, save_checkpoint
from drscreen.engine.config import ExperimentConfig, ModelConfig, OptimConfig, config_to_dict
from drscreen.engine.dataset import FundusDataset, PreparedCache, collate_examples, worker_init
from drscreen.engine.distributed import (
    DistContext,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    broadcast_object,
)
from drscreen.engine.inference import Predictions, compute_metrics, predict
from drscreen.engine.optim import build_optimizer, build_scheduler
from drscreen.engine.recorder import RunRecorder
from drscreen.engine.samplers import AlternatingBatchSampler
from drscreen.engine.sources import SourceBalancedSampler, per_source_metrics
from drscreen.inference import Predictor, amp_dtype_for, autocast_context
from drscreen.losses import create_loss
from drscreen.models import DRModel, create_model, load_checkpoint
from drscreen.models.registry import MODELS
from drscreen.preprocess import PreprocessConfig, Preprocessor
from drscreen.transforms import build_augmentation

log = logging.getLogger(__name__)

SamplesFactory = Callable[[], list[Sample]]


def build_model(config: ModelConfig) -> DRModel:
    """The configured registry model (``tiny`` settings first, ``kwargs`` on top) with the
    checkpoint's weights (``freeze`` is the trainer's business)."""
    kwargs = {**(MODELS.get(config.name).metadata.get("tiny", {}) if config.tiny else {}), **config.kwargs}
    model = create_model(config.name, **kwargs)
    if config.checkpoint is not None:
        load_checkpoint(model, config.checkpoint, allow_missing=config.checkpoint_allow_missing)
    return model


def initial_model(config: ModelConfig, seed: int) -> DRModel:
    """``build_model(config)`` with the random initialisation seeded by ``seed`` (the global RNG
    state is left as it was), so that every rank and every re-initialisation gets the same weights."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return build_model(config)


def frozen_modules(model: nn.Module, names: Sequence[str]) -> list[nn.Module]:
    """Turn off the gradients of the sub-modules called ``names`` and return those modules.

    Raises ``ValueError`` for a name that is not a sub-module of ``model``."""
    modules = dict(model.named_modules())
    unknown = [name for name in names if not name or name not in modules]
    if unknown:
        raise ValueError(f"model.freeze: no sub-module {unknown} in {type(model).__name__}")
    for name in names:
        modules[name].requires_grad_(False)
    return [modules[name] for name in names]


def use_deterministic_kernels() -> None:
    """Ask torch for deterministic kernels (cuBLAS needs its workspace setting before first use)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def sample_to_dict(sample: Sample) -> dict[str, Any]:
    """A checkpoint-safe (plain types only) form of ``sample``."""
    data = dataclasses.asdict(sample)
    data["image_path"] = str(sample.image_path)
    if sample.lesion_masks is not None:
        data["lesion_masks"] = {k: None if v is None else str(v) for k, v in sample.lesion_masks.items()}
    return data


class Trainer:
    """Owns the model, loss, data plumbing and files of one run; ``run_stage`` trains one stage.

    Args:
        config: the experiment.
        context: this process's rank and device (``init_distributed``).
        run_dir: the run folder (created by the caller).
        resume: continue from ``run_dir/checkpoints/last.pt``.
    """

    def __init__(self, config: ExperimentConfig, context: DistContext, run_dir: Path, *, resume: bool = False) -> None:
        self.config = config
        self.context = context
        self.run_dir = run_dir
        self.checkpoint_dir = run_dir / "checkpoints"
        self.device = context.device
        if config.train.deterministic:
            use_deterministic_kernels()
        self.model: DRModel = initial_model(config.model, config.train.seed).to(self.device)
        if config.train.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.frozen = frozen_modules(self.model, config.model.freeze)
        self.loss_fn: nn.Module = create_loss(config.loss.name, **config.loss.kwargs).to(self.device)
        self.network: nn.Module = self.model
        if context.distributed:
            unused = config.train.find_unused_parameters or bool(
                MODELS.get(config.model.name).metadata.get("no_grad_params")
            )
            self.network = DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=unused,
            )
        self.amp_dtype = amp_dtype_for(config.train.amp, self.device)
        self.preprocessor = Preprocessor(PreprocessConfig.for_model(config.data.preprocess, self.model.normalization))
        cache = config.data.cache
        self.cache = PreparedCache(cache.dir, self.preprocessor.config) if cache.enabled else None
        self.augment = build_augmentation(config.data.augmentation, self.preprocessor.config.size)
        self.recorder = RunRecorder(run_dir, enabled=context.is_main)
        self.history: list[dict[str, Any]] = []
        self.stage_index = 0
        #: The running stage's weight average (``train.ema_decay``), ``None`` outside stages.
        self.ema: AveragedModel | None = None
        #: The training samples of the latest stage that ran.
        self.current_samples: list[Sample] = []
        self.resume_state = read_checkpoint(self.checkpoint_dir / "last.pt") if resume else None
        if self.resume_state is not None:
            self.history = list(self.resume_state["history"])
        torch.manual_seed(config.train.seed + context.rank)

    # ----------------------------------------------------------------------------------- data
    def dataset(self, samples: Sequence[Sample], *, train: bool) -> FundusDataset:
        """A dataset over ``samples``; ``train`` turns augmentation on."""
        return FundusDataset(
            samples,
            self.preprocessor,
            self.model.lesion_classes,
            self.preprocessor.config.normalization,
            augment=self.augment if train else None,
            cache=self.cache,
            seed=self.config.train.seed,
            lesion_union=train and self.config.data.lesion_union,
        )

    def _train_loader(
        self, dataset: FundusDataset, batch_size: int, alternate: bool
    ) -> tuple[DataLoader[Any], DistributedSampler[Any] | SourceBalancedSampler | AlternatingBatchSampler]:
        ctx, train = self.context, self.config.train
        common: dict[str, Any] = {
            "num_workers": train.workers, "collate_fn": collate_examples, "worker_init_fn": worker_init,
            "pin_memory": self.device.type == "cuda",
        }  # fmt: skip
        if alternate:
            sampler: Any = AlternatingBatchSampler(
                [i for i, has in enumerate(dataset.has_masks) if has],
                [i for i, has in enumerate(dataset.has_masks) if not has],
                batch_size,
                seed=train.seed, rank=ctx.rank, world_size=ctx.world_size, drop_last=train.drop_last,
            )  # fmt: skip
            return DataLoader(dataset, batch_sampler=sampler, **common), sampler
        if self.config.data.balance_sources:
            sampler = SourceBalancedSampler(dataset.samples, seed=train.seed, rank=ctx.rank, world_size=ctx.world_size)
        else:
            sampler = DistributedSampler(
                dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=train.seed
            )
        drop_last = train.drop_last and len(sampler) >= batch_size
        loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, **common)
        return loader, sampler

    def _progress(self, iterable: Iterable[Any], description: str, total: int | None = None) -> Iterable[Any]:
        enabled = self.config.train.progress and self.context.is_main and sys.stderr.isatty()
        return tqdm(iterable, desc=description, total=total, leave=False, disable=not enabled, dynamic_ncols=True)

    # ---------------------------------------------------------------------------- evaluation
    @property
    def evaluated_model(self) -> DRModel:
        """The weights that are validated and saved as best: the running average when there is one."""
        return self.model if self.ema is None else self.ema.module  # type: ignore[return-value]

    def predictor(self, *, tta: str = "none") -> Predictor:
        """The inference core around the weights being validated (``evaluated_model``), with the
        run's preprocessing, precision, batch size and DR grade decoding."""
        return Predictor.from_model(
            self.evaluated_model,
            self.preprocessor.config,
            device=self.device,
            amp=self.config.train.amp,
            dr_decoding=self.config.model.dr_decoding,
            tta=tta,
            batch_size=self.config.optim.batch_size,
        )

    def predict(self, dataset: FundusDataset, *, description: str = "predict", tta: str = "none") -> Predictions:
        """Predictions (and loss) of the current model on ``dataset``; every rank takes part.

        ``tta``: test-time augmentation (``drscreen.inference.TTA_FLIPS``)."""
        return predict(
            self.predictor(tta=tta),
            dataset,
            workers=self.config.train.workers,
            context=self.context,
            loss_fn=self.loss_fn,
            progress=lambda loader: self._progress(loader, description),
        )

    def validate(self, dataset: FundusDataset) -> dict[str, float]:
        """Flat validation metrics (``compute_metrics``; per source too with ``data.balance_sources``),
        identical on every rank."""
        predictions = self.predict(dataset, description="validate")
        flat: dict[str, float] = {}
        if self.context.is_main:
            decoding = self.config.model.dr_decoding
            flat, _ = compute_metrics(predictions, dataset.samples, self.model.lesion_classes, dr_decoding=decoding)
            if self.config.data.balance_sources:
                flat.update(
                    per_source_metrics(predictions, dataset.samples, self.model.lesion_classes, dr_decoding=decoding)
                )
        return broadcast_object(flat, self.context)

    # -------------------------------------------------------------------------------- stages
    def reinitialise(self) -> None:
        """Put the model back to its initial weights (same seed, same checkpoint)."""
        self.model.load_state_dict(initial_model(self.config.model, self.config.train.seed).state_dict())

    def run_stage(
        self,
        name: str,
        samples: SamplesFactory,
        *,
        epochs: int,
        optim: OptimConfig,
        val_dataset: FundusDataset | None,
        alternate: bool = False,
    ) -> None:
        """Train stage ``name`` on ``samples()`` for ``epochs`` epochs (``alternate``: SUNet batches).

        ``samples`` is called only when the stage starts fresh: a stage completed before the
        resume point is skipped, the stage being resumed takes its samples from the checkpoint.
        At the end the model holds the stage's best (or, never validated, last) weights, the
        averaged ones with ``train.ema_decay``.
        """
        index = self.stage_index
        self.stage_index += 1
        resume = self.resume_state
        if resume is not None and resume["stage"] > index:
            return
        resuming = resume is not None and resume["stage"] == index
        train_samples = [Sample(**s) for s in resume["train_samples"]] if resuming else samples()
        self.current_samples = train_samples
        dataset = self.dataset(train_samples, train=True)
        loader, sampler = self._train_loader(dataset, optim.batch_size, alternate)
        parameters = [
            p for p in itertools.chain(self.model.parameters(), self.loss_fn.parameters()) if p.requires_grad
        ]
        optimizer = build_optimizer(parameters, optim)
        scheduler = build_scheduler(optimizer, optim, len(loader))
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        decay = self.config.train.ema_decay
        self.ema = None if decay is None else AveragedModel(
            self.model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True
        )
        state: dict[str, Any] = {"epoch": 0, "best": None, "bad_epochs": 0, "finished": False, "recent": []}
        if resuming:
            assert resume is not None
            self.model.load_state_dict(resume["model"])
            self.loss_fn.load_state_dict(resume["loss"])
            optimizer.load_state_dict(resume["optimizer"])
            scheduler.load_state_dict(resume["scheduler"])
            scaler.load_state_dict(resume["scaler"])
            if self.ema is not None:
                self.ema.load_state_dict(resume["ema"])
            restore_rng(resume["rng"][self.context.rank])
            state = {key: resume.get(key, default) for key, default in state.items()}
            self.resume_state = None
            log.info("resuming stage %s at epoch %d", name, state["epoch"] + 1)

        monitor, sign = self.config.train.monitor, self._monitor_sign()
        while not state["finished"]:
            epoch = state["epoch"]
            sampler.set_epoch(epoch)
            dataset.set_epoch(epoch)
            started = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            description = f"{name} {epoch + 1}/{epochs}"
            losses = self.train_epoch(loader, optimizer, scheduler, scaler, optim.grad_clip, description)
            row: dict[str, Any] = {
                "stage": name, "epoch": epoch + 1, "step": scheduler.last_epoch,
                "lr": lr, "world_size": self.context.world_size,
                "global_batch": optim.batch_size * self.context.world_size, "train_samples": len(dataset),
                **{f"train_{key}": value for key, value in losses.items()},
            }  # fmt: skip
            last_epoch = epoch + 1 == epochs
            if val_dataset is not None and ((epoch + 1) % self.config.train.eval_every == 0 or last_epoch):
                metrics = self.validate(val_dataset)
                row.update({f"val_{key}": value for key, value in metrics.items()})
                value = self._windowed(metrics.get(monitor, math.nan), state, row)
                best = state["best"]
                if not math.isnan(value) and (best is None or sign * value > sign * best["value"]):
                    state["best"] = {"value": value, "epoch": epoch + 1}
                    state["bad_epochs"] = 0
                    self._save_best(name, index, epoch + 1, metrics)
                else:
                    state["bad_epochs"] += 1
            row["seconds"] = round(time.perf_counter() - started, 3)
            self.history.append(row)
            patience = self.config.train.patience
            stop = patience is not None and state["bad_epochs"] >= patience
            state["epoch"] = epoch + 1
            state["finished"] = stop or last_epoch
            self._save_last(index, train_samples, state, optimizer, scheduler, scaler)
            self.recorder.record(self.history)
            if stop:
                log.info("early stop in stage %s after epoch %d (%s did not improve for %d evaluations)",
                         name, epoch + 1, monitor, patience)  # fmt: skip
        if state["best"] is not None:
            barrier(self.context)
            self.model.load_state_dict(read_checkpoint(self.checkpoint_dir / "best.pt")["model"])
        elif self.ema is not None:
            self.model.load_state_dict(self.ema.module.state_dict())
        self.ema = None

    def _windowed(self, value: float, state: dict[str, Any], row: dict[str, Any]) -> float:
        """``value`` averaged with the stage's previous validations (``train.monitor_window``);
        logged as ``val_<monitor>_window`` when the window is longer than one."""
        window = self.config.train.monitor_window
        if window == 1 or math.isnan(value):
            return value
        state["recent"] = [*state["recent"], value][-window:]
        mean = sum(state["recent"]) / len(state["recent"])
        row[f"val_{self.config.train.monitor}_window"] = mean
        return mean

    def _monitor_sign(self) -> float:
        mode = self.config.train.mode
        if mode == "auto":
            mode = "min" if self.config.train.monitor.endswith("loss") else "max"
        return 1.0 if mode == "max" else -1.0

    def train_epoch(
        self,
        loader: DataLoader[Any],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        scaler: torch.amp.GradScaler,
        grad_clip: float | None,
        description: str,
    ) -> dict[str, float]:
        """One pass over ``loader``; returns each loss part averaged over batches and ranks."""
        self.network.train()
        for module in self.frozen:
            module.eval()
        self.loss_fn.train()
        names: list[str] = []
        sums: torch.Tensor | None = None
        for batch in self._progress(loader, description, total=len(loader)):
            images = batch.images.to(self.device, non_blocking=True)
            targets = batch.targets.to(self.device)
            with autocast_context(self.device, self.amp_dtype):
                output = self.network(images)
                loss, parts = self.loss_fn(output, targets, self.model.lesion_activation)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            if not names:
                names = sorted(parts)
                sums = torch.zeros(len(names) + 1, dtype=torch.float64)
            assert sums is not None
            sums += torch.tensor([float(parts[k]) for k in names] + [1.0], dtype=torch.float64)
        if sums is None:
            return {}
        total = all_reduce_sum(sums, self.context)
        return {("loss" if k == "total" else k): float(total[i] / total[-1]) for i, k in enumerate(names)}

    # --------------------------------------------------------------------------------- files
    def _save_best(self, stage: str, index: int, epoch: int, metrics: dict[str, float]) -> None:
        if self.context.is_main:
            payload = {
                "model": self.evaluated_model.state_dict(), "stage": stage, "stage_index": index, "epoch": epoch,
                "metrics": metrics, "config": config_to_dict(self.config),
            }  # fmt: skip
            save_checkpoint(payload, self.checkpoint_dir / "best.pt")

    def _save_last(
        self,
        index: int,
        train_samples: Sequence[Sample],
        state: dict[str, Any],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        scaler: torch.amp.GradScaler,
    ) -> None:
        rng = all_gather_objects(capture_rng(), self.context)
        if not self.context.is_main:
            return
        payload = {
            "stage": index, **state,
            "model": self.model.state_dict(), "ema": None if self.ema is None else self.ema.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "rng": rng, "history": self.history, "train_samples": [sample_to_dict(s) for s in train_samples],
            "config": config_to_dict(self.config),
        }  # fmt: skip
        save_checkpoint(payload, self.checkpoint_dir / "last.pt")

    def save_weights(self, name: str) -> Path:
        """Write the current weights to ``checkpoints/<name>.pt`` (rank 0) and return the path."""
        path = self.checkpoint_dir / f"{name}.pt"
        if self.context.is_main:
            save_checkpoint({"model": self.model.state_dict(), "config": config_to_dict(self.config)}, path)
        return path

    def close(self) -> None:
        self.recorder.close()
