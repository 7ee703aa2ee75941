"""Reference grades for a screening report, read from a user's ``--labels`` CSV.

The CSV has a header row with the columns ``id`` and ``dr_grade`` (ICDR 0-4) and, optionally,
``dme_grade`` (IDRiD 0-2; an empty cell means unknown). ``id`` is the image id of the results
(``ImageResult.id``), or the input's file name or stem.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from drscreen.grading import validate_dme_grade, validate_dr_grade

#: Columns a labels CSV must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("id", "dr_grade")


@dataclass(frozen=True)
class LabelRow:
    """The reference grades of one image: DR always, DME when the CSV gives it."""

    dr_grade: int
    dme_grade: int | None = None

    def __post_init__(self) -> None:
        validate_dr_grade(self.dr_grade)
        if self.dme_grade is not None:
            validate_dme_grade(self.dme_grade)


def _parse_grade(text: str, column: str, line: int) -> int:
    """An integer grade from a CSV cell (``"2"`` or ``"2.0"``), else ``ValueError`` naming the cell."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"line {line}: {column} must be an integer grade, got {text!r}") from None
    if not value.is_integer():
        raise ValueError(f"line {line}: {column} must be an integer grade, got {text!r}")
    return int(value)


def read_labels(path: str | Path) -> dict[str, LabelRow]:
    """Reference grades per image id from a labels CSV (see the module docstring).

    Raises ``ValueError`` naming the file and line for a missing column, an invalid grade or a
    repeated id.
    """
    path = Path(path)
    labels: dict[str, LabelRow] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [name.strip() for name in reader.fieldnames or []]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise ValueError(f"{path}: labels CSV lacks column(s) {', '.join(missing)}; it has {columns}")
        reader.fieldnames = columns
        for line, row in enumerate(reader, start=2):
            image_id = (row["id"] or "").strip()
            if not image_id:
                raise ValueError(f"{path}: line {line}: empty id")
            if image_id in labels:
                raise ValueError(f"{path}: line {line}: id {image_id!r} appears twice")
            dme_text = (row.get("dme_grade") or "").strip()
            try:
                labels[image_id] = LabelRow(
                    dr_grade=_parse_grade((row["dr_grade"] or "").strip(), "dr_grade", line),
                    dme_grade=_parse_grade(dme_text, "dme_grade", line) if dme_text else None,
                )
            except ValueError as error:
                message = str(error) if str(error).startswith("line") else f"line {line}: {error}"
                raise ValueError(f"{path}: {message}") from None
    return labels
