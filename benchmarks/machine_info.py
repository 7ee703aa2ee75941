"""The machine a benchmark ran on and its command line, for the headers of its results
(imported by the scripts here)."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def machine() -> dict[str, Any]:
    """CPU model, cores, bf16 support, torch's threads and the library versions."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        lscpu = ""
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    try:
        import onnxruntime

        onnx_version: str | None = onnxruntime.__version__
    except ImportError:
        onnx_version = None
    try:
        import openvino

        openvino_version: str | None = openvino.__version__.split("-")[0]
    except ImportError:
        openvino_version = None
    return {
        "cpu": fields.get("Model name", platform.processor()).strip(),
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": onnx_version,
        "openvino": openvino_version,
        "python": platform.python_version(),
    }


def command_line(argv: Sequence[str] | None = None, script: str | Path | None = None) -> str:
    """The command that ran the benchmark, ``python <script> <arguments>`` quoted for a shell:
    ``script`` (default: ``sys.argv[0]``) with ``argv`` (default: ``sys.argv[1:]``)."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    return "python " + " ".join(shlex.quote(a) for a in [str(Path(script or sys.argv[0])), *arguments])
