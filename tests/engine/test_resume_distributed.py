"""Exact resume after an interruption, and a 2-process gloo (torchrun) run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_fixtures import REPO, tiny_config

from drscreen.engine import train
from drscreen.engine.checkpoint import read_checkpoint
from drscreen.engine.recorder import read_log
from drscreen.engine.trainer import Trainer


@pytest.mark.parametrize("overrides", [(), ("train.ema_decay=0.9",)], ids=["plain", "ema"])
def test_exact_resume(
    synth_root: Path, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, overrides: tuple[str, ...]
) -> None:
    """2 epochs straight == 1 epoch, interruption, resume for the 2nd epoch (weights, log)."""
    straight = train(tiny_config(synth_root, tmp_path, cache_dir, "run.name=straight", *overrides))

    config = tiny_config(synth_root, tmp_path, cache_dir, "run.name=resumed", *overrides)
    original = Trainer.train_epoch
    calls = {"n": 0}

    def interrupted(self: Trainer, *args: Any, **kwargs: Any) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.setattr(Trainer, "train_epoch", original)
    with pytest.raises(FileExistsError, match="--resume"):
        train(config)
    resumed = train(config, resume=True)

    a = read_checkpoint(straight / "checkpoints/last.pt")
    b = read_checkpoint(resumed / "checkpoints/last.pt")
    assert a["epoch"] == b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert (a["ema"] is None) == (b["ema"] is None) == (not overrides)
    for key in a["ema"] or {}:
        assert torch.equal(a["ema"][key], b["ema"][key]), key
    log_a, log_b = read_log(straight), read_log(resumed)
    assert len(log_b) == 2
    for row_a, row_b in zip(log_a, log_b, strict=True):
        assert row_a["train_loss"] == row_b["train_loss"] and row_a["val_loss"] == row_b["val_loss"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_two_process_gloo_run(synth_root: Path, tmp_path: Path, cache_dir: Path) -> None:
    """torchrun with 2 CPU processes: both ranks train on half the data each, rank 0 writes."""
    config = tiny_config(synth_root, tmp_path, cache_dir, "optim.batch_size=2", "optim.epochs=1")
    config_path = tmp_path / "config.yaml"
    from drscreen.engine import save_config

    save_config(config, config_path)
    script = tmp_path / "run_rank.py"
    script.write_text(
        "import os, sys\n"
        "from drscreen.engine import load_config, train\n"
        "run_dir = train(load_config(sys.argv[1]))\n"
        "print(f\"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']} finished {run_dir}\")\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
        "--master_port", str(_free_port()), str(script), str(config_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "rank 0 of 2 finished" in done.stdout and "rank 1 of 2 finished" in done.stdout
    run_dir = tmp_path / "smoke"
    (row,) = read_log(run_dir)
    # 16 training images, 2 per process and step, 2 processes: 4 steps, global batch 4.
    assert (row["world_size"], row["global_batch"], row["step"]) == ("2", "4", "4")
    assert (run_dir / "checkpoints" / "last.pt").is_file() and (run_dir / "metrics.json").is_file()
    state = read_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert len(state["rng"]) == 2
