"""The export cache (``drscreen.export.cached_onnx_export``): a packed model is exported to ONNX
once, again when its bytes change, and the screening runtimes use it (or a temporary export when
the cache cannot be written)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drscreen.export import cached_onnx_export, export_cache_dir, exporter, read_export_metadata
from drscreen.models import create_model, pack_checkpoint
from drscreen.models.registry import MODELS
from drscreen.screening import Screener

#: Input side of the tiny packed model, px.
SIZE = 64


def pack_tiny(path: Path, seed: int) -> Path:
    """A tiny random U²-XS-Net packed at ``path`` (``seed`` changes its weights, hence its bytes)."""
    import torch

    torch.manual_seed(seed)
    model = create_model("u2net_xs", **MODELS.get("u2net_xs").metadata["tiny"]).eval()
    config = {"model": {"name": "u2net_xs", "kwargs": MODELS.get("u2net_xs").metadata["tiny"]},
              "data": {"preprocess": {"size": SIZE, "crop_to_fov": False, "quality_gate": False}}}  # fmt: skip
    return pack_checkpoint({"model": model.state_dict(), "config": config}, path)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DRSCREEN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_packed_model_is_exported_once_and_again_when_it_changes(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    export = exporter.export_model

    def counting_export(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        return export(*args, **kwargs)

    monkeypatch.setattr(exporter, "export_model", counting_export)
    packed = pack_tiny(tmp_path / "lesions.pt", seed=0)
    first = cached_onnx_export(packed)
    assert export_cache_dir() == cache and first.parent == cache / "onnx" and first.name.startswith("lesions-")
    assert read_export_metadata(first).input_size == SIZE and len(calls) == 1
    assert cached_onnx_export(packed) == first and len(calls) == 1  # reused, not exported again
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]  # no partial file left
    pack_tiny(packed, seed=1)  # same name, other weights
    second = cached_onnx_export(packed)
    assert second != first and len(calls) == 2


def test_the_cache_folder_defaults_to_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DRSCREEN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert export_cache_dir() == tmp_path / "xdg" / "drscreen"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert export_cache_dir() == tmp_path / "home" / ".cache" / "drscreen"


def test_screeners_on_exported_runtimes_share_the_cached_export(cache: Path) -> None:
    first = Screener(explain=False, runtime="openvino", lesion_model=None)
    exports = sorted((cache / "onnx").iterdir())
    assert [p.name.split("-")[0] for p in exports] == ["drscreen_default"]
    second = Screener(explain=False, runtime="onnx", lesion_model=None)
    assert sorted((cache / "onnx").iterdir()) == exports
    assert first.weights_sha256 == second.weights_sha256 == Screener(explain=False, lesion_model=None).weights_sha256


def test_an_unwritable_cache_falls_back_to_a_temporary_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("DRSCREEN_CACHE_DIR", str(blocker))
    screener = Screener(explain=False, runtime="openvino", lesion_model=None)
    assert screener.settings["runtime"] == "OpenVinoBackend" and blocker.is_file()
