"""Building blocks shared by the adapters: label tables, grades, image lookup, missing-file policy."""

from __future__ import annotations

import csv
import logging
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Literal

from drscreen.data.errors import DatasetError
from drscreen.data.sample import Eye
from drscreen.grading import validate_dme_grade, validate_dr_grade
from drscreen.io import SUPPORTED_EXTENSIONS, find_images

log = logging.getLogger("drscreen.data")


@dataclass(frozen=True)
class Row:
    """One data row of a label table: its line number in the file and {column: value}, both stripped."""

    line: int
    values: dict[str, str]

    def get(self, column: str) -> str:
        """The value in ``column``; "" when the row is shorter than the header."""
        return self.values.get(column, "")


def read_table(path: Path, *, required: Iterable[str] = (), delimiter: str = ",") -> list[Row]:
    """Rows of a delimited label file.

    Tolerates what real label files contain: a UTF-8 byte-order mark, CRLF line ends, blank rows,
    trailing empty columns and whitespace around header names and values.
    """
    if not path.is_file():
        raise DatasetError(f"label file {path} does not exist")
    try:
        with path.open(newline="", encoding="utf-8-sig") as stream:
            reader = csv.reader(stream, delimiter=delimiter)
            lines = [(reader.line_num, cells) for cells in reader if any(cell.strip() for cell in cells)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise DatasetError(f"cannot read label file {path}: {error}") from None
    if not lines:
        raise DatasetError(f"label file {path} is empty")
    header = [name.strip() for name in lines[0][1]]
    missing = [column for column in required if column not in header]
    if missing:
        present = ", ".join(repr(name) for name in header if name)
        raise DatasetError(f"label file {path} lacks column(s) {missing}; its columns are {present}")
    return [
        Row(line, {name: cell.strip() for name, cell in zip(header, cells, strict=False) if name})
        for line, cells in lines[1:]
    ]


def parse_grade(text: str, scale: Literal["DR", "DME"], where: str) -> int | None:
    """A grade cell as an int on ``scale`` (ICDR DR 0-4, IDRiD DME 0-2); an empty cell is ``None``."""
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
        grade = int(number)
        if grade != number:
            raise ValueError(f"grade must be a whole number, got {text!r}")
        return validate_dr_grade(grade) if scale == "DR" else validate_dme_grade(grade)
    except ValueError as error:
        raise DatasetError(f"{where}: invalid {scale} grade {text!r} ({error})") from None


_EYE_WORDS: dict[str, Eye] = {
    "left": "left", "l": "left", "os": "left", "right": "right", "r": "right", "od": "right",
}


def parse_eye(text: str, where: str) -> Eye | None:
    """``left``/``right`` from left, right, L, R, OS (oculus sinister) or OD (oculus dexter); "" -> None."""
    key = text.strip().lower()
    if not key:
        return None
    if key not in _EYE_WORDS:
        raise DatasetError(f"{where}: eye {text!r} is not one of left, right, L, R, OS, OD")
    return _EYE_WORDS[key]


class ImageIndex:
    """The image files of a folder, looked up by file name or by stem, ignoring case.

    A name whose image extension differs from the file's (``x.jpg`` listed, ``x.png`` on disk) is
    found by its stem, so re-encoded copies of a dataset load with their original label files.
    """

    def __init__(self, folder: Path, *, recursive: bool = False) -> None:
        if not folder.is_dir():
            raise DatasetError(f"image folder {folder} does not exist")
        self.folder = folder
        files = find_images(folder, recursive=recursive)
        self._by_name = {path.name.lower(): path for path in files}
        self._by_stem: dict[str, Path] = {}
        for path in files:
            self._by_stem.setdefault(path.stem.lower(), path)

    def __len__(self) -> int:
        return len(self._by_name)

    def find(self, name: str) -> Path | None:
        """The file called ``name`` (with or without extension), or ``None``."""
        key = name.strip().lower()
        found = self._by_name.get(key) or self._by_stem.get(key)
        if found is None and PurePath(key).suffix in SUPPORTED_EXTENSIONS:
            found = self._by_stem.get(PurePath(key).stem)
        return found


def first_existing(candidates: Sequence[Path], what: str) -> Path:
    """The first existing path of ``candidates``; ``DatasetError`` listing them all otherwise."""
    for candidate in candidates:
        if candidate.exists():
            return candidate
    tried = "\n  ".join(str(c) for c in candidates)
    raise DatasetError(f"no {what} found; looked for:\n  {tried}")


def splits_to_load(split: str | None, present: Sequence[str], dataset: str) -> tuple[str, ...]:
    """The splits whose files are ``present`` when ``split`` is None, else ``(split,)`` if present."""
    if split is None:
        return tuple(present)
    if split not in present:
        found = ", ".join(present) or "none"
        raise DatasetError(f"{dataset} has no split {split!r} here; splits found: {found}")
    return (split,)


def present_splits(candidates: dict[str, Path], dataset: str, root: Path) -> tuple[str, ...]:
    """The split names whose marker file or folder in ``candidates`` exists; at least one must."""
    present = tuple(name for name, path in candidates.items() if path.exists())
    if not present:
        looked = "\n  ".join(str(path) for path in candidates.values())
        raise DatasetError(f"{dataset}: no split found under {root}; looked for:\n  {looked}")
    return present


def handle_missing(
    missing: Sequence[str], *, total: int, listing: Path, folder: Path, skip_missing: bool
) -> None:
    """Raise (default) or warn (``skip_missing``) when images named in ``listing`` are absent."""
    if not missing:
        return
    message = (
        f"{len(missing)} of {total} images listed in {listing} are not in {folder} "
        f"(e.g. {', '.join(missing[:5])})"
    )
    if not skip_missing:
        raise DatasetError(f"{message}; pass skip_missing=True to load the others")
    warnings.warn(f"{message}; skipped them", stacklevel=3)


def log_excluded(dataset: str, count: int, reason: str) -> None:
    """Report images left out on purpose (e.g. graded ungradable)."""
    if count:
        log.info("%s: excluded %d image(s): %s", dataset, count, reason)
