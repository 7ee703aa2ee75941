"""The rule of tests/conftest.py: a skip marked "[required in CI]" fails the run when CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from serve_helpers import CI_REQUIRED

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed"), ("", "1 skipped")])
def test_a_required_skip_fails_only_in_ci(tmp_path: Path, ci: str, outcome: str) -> None:
    shutil.copy(ROOT_CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_needs_a_browser.py").write_text(
        f"import pytest\n\ndef test_browser():\n    pytest.skip('no chromium here {CI_REQUIRED}')\n"
    )
    environment = {**os.environ, "CI": ci}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert outcome in done.stdout, done.stdout
    assert done.returncode == (1 if ci else 0)
