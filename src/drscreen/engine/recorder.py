"""Per-epoch records of a run: ``log.csv`` (always) and TensorBoard scalars (when installed)."""

from __future__ import annotations

import csv
import importlib.util
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def read_log(run_dir: Path) -> list[dict[str, str]]:
    """The rows of ``run_dir/log.csv`` as written by ``RunRecorder`` (empty without one);
    a column a row lacks is the empty string."""
    path = run_dir / "log.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


class RunRecorder:
    """Writes the epoch history of a run; a disabled recorder (ranks other than 0) does nothing.

    ``log.csv`` is rewritten from the full history each epoch, so after a resume it holds
    exactly the epochs of the checkpoint it resumed from, never a duplicated row.
    """

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.path = run_dir / "log.csv"
        self.enabled = enabled
        self._tensorboard = enabled and importlib.util.find_spec("tensorboard") is not None
        self._writer: Any = None

    def record(self, history: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite ``log.csv`` from ``history`` and send the newest row to TensorBoard."""
        if not self.enabled or not history:
            return
        columns: list[str] = []
        for row in history:
            columns.extend(key for key in row if key not in columns)
        with self.path.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns)
            writer.writeheader()
            writer.writerows(history)
        if self._tensorboard:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.path.parent / "tensorboard"))
            row = history[-1]
            step = int(row["step"])
            for key, value in row.items():
                if isinstance(value, float) and not math.isnan(value):
                    self._writer.add_scalar(key.replace("_", "/", 1), value, step)
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
