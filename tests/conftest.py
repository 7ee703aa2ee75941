"""Shared test fixtures. Tests make their own images; real data is optional and skipped when absent."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """``$DRSCREEN_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("DRSCREEN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; the test is skipped when it is not present."""
    root = shared_data_root()
    if not (root / "README.md").is_file():
        pytest.skip(f"real data not found at {root}")
    return root


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    """Seed torch before every test so random weights and inputs are reproducible."""
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _single_intra_op_thread() -> Iterator[None]:
    """Test tensors are tiny: intra-op threads gain nothing and contend badly on a shared 2-core CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: A skip whose reason contains this marker fails the run when ``CI=true``: the tests that need a
#: real browser or a real PostgreSQL server skip on a machine without them, but must run in CI.
CI_REQUIRED = "[required in CI]"


def skip_is_failure_in_ci(report: pytest.TestReport) -> None:
    """Turn ``report`` from skipped into failed when it is a CI-required skip and ``CI=true``."""
    if report.skipped and os.environ.get("CI", "").lower() == "true" and CI_REQUIRED in str(report.longrepr):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where this test must run: {report.longrepr}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    skip_is_failure_in_ci(report)
    return report


@pytest.fixture(autouse=True, scope="session")
def _export_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """ONNX exports made by the tests (``drscreen.export.cached_onnx_export``) go to a temporary
    folder, never to the user's cache; subprocesses inherit it."""
    previous = os.environ.get("DRSCREEN_CACHE_DIR")
    os.environ["DRSCREEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("drscreen-cache"))
    yield
    if previous is None:
        os.environ.pop("DRSCREEN_CACHE_DIR", None)
    else:
        os.environ["DRSCREEN_CACHE_DIR"] = previous
