"""``train``, the entry point of a training run, and its run folder (``config.yaml``, ``metrics.json``)."""

from __future__ import annotations

import json
import logging
import math
import random
from pathlib import Path
from typing import Any

import numpy as np

from drscreen.engine.checkpoint import read_checkpoint
from drscreen.engine.config import ExperimentConfig, save_config
from drscreen.engine.distributed import DistContext, barrier, init_distributed, shutdown_distributed
from drscreen.engine.parts import load_parts
from drscreen.engine.schedules import SCHEDULES
from drscreen.engine.trainer import Trainer

log = logging.getLogger(__name__)


def prepare_run_dir(config: ExperimentConfig, context: DistContext, resume: bool) -> tuple[Path, bool]:
    """Create the run folder and write ``config.yaml``; returns (folder, whether to resume)."""
    run_dir = config.run.path
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file() and not resume:
        raise FileExistsError(f"{run_dir} already holds a run: pass --resume to continue it, or set run.name")
    if resume and not last.is_file():
        log.info("no checkpoint in %s: starting from scratch", run_dir)
        resume = False
    if context.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.yaml")
    barrier(context)
    return run_dir, resume


def train(config: ExperimentConfig, *, resume: bool = False) -> Path:
    """Train ``config`` (in this process, or as one rank of a torchrun job); returns the run folder.

    Writes ``config.yaml``, ``log.csv``, ``checkpoints/{last,best}.pt`` and ``metrics.json``
    (the final model's validation and test metrics) under ``run.dir/run.name``.
    """
    context = init_distributed(config.train.device)
    try:
        run_dir, resume = prepare_run_dir(config, context, resume)
        random.seed(config.train.seed + context.rank)
        np.random.seed(config.train.seed + context.rank)
        trainer = Trainer(config, context, run_dir, resume=resume)
        parts = load_parts(config.data)
        val = trainer.dataset(parts["val"], train=False) if parts["val"] else None
        SCHEDULES[config.schedule.name](trainer, parts["train"], val)
        results: dict[str, Any] = {"monitor": config.train.monitor}
        for name in ("val", "test"):
            if parts[name]:
                dataset = val if name == "val" and val is not None else trainer.dataset(parts[name], train=False)
                results[name] = trainer.validate(dataset)
        if context.is_main:
            best = run_dir / "checkpoints" / "best.pt"
            if best.is_file():
                meta = read_checkpoint(best)
                value = meta["metrics"].get(config.train.monitor)
                results["best"] = {"stage": meta["stage"], "epoch": meta["epoch"], "value": value}
            write_json(results, run_dir / "metrics.json")
        trainer.close()
        return run_dir
    finally:
        shutdown_distributed(context)


def write_json(data: Any, path: Path) -> None:
    """Write ``data`` as strict JSON (NaN becomes ``null``)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    path.write_text(json.dumps(clean(data), indent=2) + "\n", encoding="utf-8")
