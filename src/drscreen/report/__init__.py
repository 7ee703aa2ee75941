"""Report writers: the screening output folder (JSON, CSV, overlays) and the HTML report.

``screen(inputs, out_dir)`` runs a ``drscreen.screening.Screener`` over the inputs and writes
the folder described in ``drscreen.report.folder``; the writers never call a model.
"""

from drscreen.report.folder import (
    EXIT_SOME_FAILED,
    PATIENT_COLUMNS,
    RESULT_COLUMNS,
    RunSummary,
    ScreeningFolder,
    iter_results,
    screen,
)

__all__ = [
    "EXIT_SOME_FAILED",
    "PATIENT_COLUMNS",
    "RESULT_COLUMNS",
    "RunSummary",
    "ScreeningFolder",
    "iter_results",
    "screen",
]
