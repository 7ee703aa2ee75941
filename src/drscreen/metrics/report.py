"""Markdown table rows of metric dicts, with bootstrap intervals when present."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def format_metric(
    value: float | None, ci: Sequence[float] | None = None, digits: int = 3, percent: bool = False
) -> str:
    """``0.912 (0.881–0.934)``; ``n/a`` for None or NaN; ``percent`` scales by 100 and adds ``%``."""
    if value is None or math.isnan(value):
        return "n/a"
    scale, suffix = (100.0, "%") if percent else (1.0, "")
    text = f"{value * scale:.{digits}f}{suffix}"
    if ci is not None and not any(math.isnan(v) for v in ci):
        low, high = ci
        text += f" ({low * scale:.{digits}f}–{high * scale:.{digits}f})"
    return text


@dataclass(frozen=True)
class MetricReport:
    """Formats metric dicts as rows of one markdown table.

    ``columns`` maps a metric key to its column header. For a key ``k`` the interval is read from
    ``k + "_ci"`` when the dict has it (the convention of ``referable_metrics``). Missing keys show
    as ``–``.

    Example::

        report = MetricReport({"auc": "AUC", "sensitivity": "Sens.", "specificity": "Spec."})
        print(report.table({"SUNet": referable_metrics(...)}))
    """

    columns: Mapping[str, str]
    digits: int = 3
    percent: bool = False
    name_header: str = "model"

    def header(self) -> str:
        """The header line and the separator line."""
        names = [self.name_header, *self.columns.values()]
        return "| " + " | ".join(names) + " |\n|" + "---|" * len(names)

    def row(self, name: str, metrics: Mapping[str, Any]) -> str:
        """One table row: ``name`` then each column's value with its interval."""
        cells = [name]
        for key in self.columns:
            if key not in metrics:
                cells.append("–")
            else:
                cells.append(format_metric(metrics[key], metrics.get(f"{key}_ci"), self.digits, self.percent))
        return "| " + " | ".join(cells) + " |"

    def table(self, rows: Mapping[str, Mapping[str, Any]]) -> str:
        """Header plus one row per ``{name: metrics}`` entry, in order."""
        return "\n".join([self.header(), *(self.row(name, metrics) for name, metrics in rows.items())])
