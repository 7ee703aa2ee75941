"""``torchrun --nproc_per_node 2 -m drscreen.cli screen``: the same folder as one process."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import pytest

from drscreen.screening.distributed import rank_device, rank_from_environment, shard
from drscreen.synth import generate_fundus

#: Fast settings: no explanation maps, small overlays, no progress bar, no worker processes.
FAST = ["--no-explain", "--overlay-size", "256", "--quiet", "--workers", "0"]


def _folder_content(out: Path) -> dict[str, Any]:
    """Every result without its timing fields, and the rows of the three tables."""
    results = {}
    for path in sorted((out / "results").glob("*.json")):
        result = json.loads(path.read_text())
        for key in ("seconds", "created"):
            result["provenance"].pop(key)
        results[path.name] = result
    tables = {}
    for name in ("results.csv", "patients.csv", "errors.csv"):
        with (out / name).open(newline="") as stream:
            tables[name] = list(csv.DictReader(stream))
    overlays = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    return {"results": results, "tables": tables, "overlays": overlays, "report": (out / "report.html").is_file()}


def test_two_ranks_write_the_folder_one_process_writes(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for seed in range(5):
        image = generate_fundus(seed=seed, size=256).image
        cv2.imwrite(str(images / f"p{seed}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    single, ranked = tmp_path / "single", tmp_path / "ranked"
    command = ["-m", "drscreen.cli", "screen", str(images), *FAST]
    # One thread per process in both runs (torchrun's default): another thread count sums the
    # convolutions in another order, which can move a probability's 6th decimal.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *command, "--out", str(single)], capture_output=True, text=True,
                          timeout=600, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    done = subprocess.run([*launcher, *command, "--out", str(ranked)], capture_output=True, text=True, timeout=600,
                          env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("screened 5 of 5 inputs") == 1, "rank 0 alone reports the merged run"
    expected = _folder_content(single)
    assert len(expected["results"]) == 5 and len(expected["tables"]["results.csv"]) == 5
    merged = _folder_content(ranked)
    differing = [(name, key) for name, result in expected["results"].items() for key in result
                 if merged["results"].get(name, {}).get(key) != result[key]]  # fmt: skip
    assert not differing, differing
    assert merged == expected


def test_ranks_take_every_world_size_th_input_from_their_rank_on() -> None:
    records = list(range(7))
    shards = [shard(records, rank, 3) for rank in range(3)]
    assert shards == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(sum(shards, [])) == records
    with pytest.raises(ValueError, match="rank"):
        shard(records, 3, 3)


def test_the_rank_comes_from_torchrun_s_environment() -> None:
    assert rank_from_environment({}) is None and rank_from_environment({"WORLD_SIZE": "1", "RANK": "0"}) is None
    rank = rank_from_environment({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert rank is not None and (rank.rank, rank.world_size, rank.local_rank) == (3, 4, 1)
    assert (
        rank_device("cuda", 1) == "cuda:1" and rank_device("cpu", 1) == "cpu" and rank_device("cuda:0", 1) == "cuda:0"
    )
