"""The screening workers (``drscreen.serve.work``) run the networks on the runtime ``drscreen serve``
was given: ``--runtime`` / ``--amp`` reach ``ServeConfig`` and every worker's ``Screener``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drscreen.cli import main as cli_main
from drscreen.screening import ImageResult


def test_serve_passes_runtime_and_precision_to_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def run_server(*args: Any) -> int:
        calls.append(args)
        return 0

    monkeypatch.setattr("drscreen.serve.main.run_server", run_server)
    assert cli_main(["serve", "--data-dir", str(tmp_path), "--runtime", "openvino", "--amp", "bf16"]) == 0
    assert cli_main(["serve", "--data-dir", str(tmp_path)]) == 0
    assert [call[-2:] for call in calls] == [("openvino", "bf16"), ("torch", "fp32")]
    with pytest.raises(SystemExit):
        cli_main(["serve", "--data-dir", str(tmp_path), "--runtime", "tensorrt"])


def test_a_worker_screens_on_the_configured_runtime(make_client, good_photo: Path, upload, wait_for_job) -> None:  # type: ignore[no-untyped-def]
    client = make_client(workers=1, runtime="openvino", poll_seconds=0.1)
    answer = upload(client, [(good_photo.name, good_photo.read_bytes(), "image/jpeg")], "P-ov")
    assert answer.status_code == 202, answer.text
    outcome = answer.json()["files"][0]
    job = wait_for_job(client, outcome["job_id"], timeout=300)
    assert job["status"] == "done", job
    result = ImageResult.model_validate(client.get(f"/api/images/{outcome['image_id']}/result").json())
    assert result.provenance.runtime == "OpenVinoBackend"
    assert result.provenance.lesion_model is not None and result.provenance.lesion_model.runtime == "OpenVinoBackend"
    assert result.explanation is not None  # explanations run on the packed PyTorch weights
