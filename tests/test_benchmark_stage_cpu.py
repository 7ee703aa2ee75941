"""benchmarks/stage_cpu.py names the timed package without a machine's absolute path."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_timed_package_is_named_relative_to_its_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the script imports its sibling throughput.py
    stage_cpu = importlib.import_module("stage_cpu")
    assert stage_cpu.package_location(BENCHMARKS.parent / "src" / "drscreen") == "src/drscreen"
    other = tmp_path / "snap_head2" / "src" / "drscreen"
    other.mkdir(parents=True)
    assert stage_cpu.package_location(other) == "snap_head2/src/drscreen"
