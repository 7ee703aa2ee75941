"""What a user hands to ``screen``: files, folders, CSV manifests, DICOM, arrays and PIL images.

``collect_inputs`` turns any mix of them into ``ScreeningInput`` records, each with a unique id
(the file's path relative to the folder or manifest it came from, without extension), and the
patient, laterality, visit and field that the manifest, the DICOM tags or the file name give.
Nothing is decoded here: reading happens when the image is screened, so that a bad file costs
one row in ``errors.csv``, never the batch.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from drscreen.io import InputError, find_images
from drscreen.screening.landmarks import laterality_from_name

Laterality = Literal["R", "L"]
LateralitySource = Literal["manifest", "dicom", "file_name"]

#: Manifest columns: ``path`` is required, the others optional.
MANIFEST_COLUMNS: tuple[str, ...] = ("path", "id", "patient_id", "laterality", "visit", "field")
_LATERALITY_WORDS: dict[str, Laterality] = {
    "r": "R", "right": "R", "od": "R", "re": "R",
    "l": "L", "left": "L", "os": "L", "le": "L",
}  # fmt: skip


class ManifestError(ValueError):
    """A CSV manifest that cannot be used (missing ``path`` column, bad laterality ...)."""


@dataclass(frozen=True)
class ScreeningInput:
    """One photograph to screen.

    Attributes:
        id: unique within a run; names the output files.
        path: the file, or None for an in-memory image.
        image: (H, W, 3) uint8 RGB for in-memory images, else None.
        patient_id, visit, field: from a manifest or DICOM tags (None when unknown).
        laterality: ``"R"`` / ``"L"`` from the manifest, DICOM tags or the file name; None when unknown.
        laterality_source: where ``laterality`` came from.
    """

    id: str
    path: Path | None = None
    image: np.ndarray | None = None
    patient_id: str | None = None
    laterality: Laterality | None = None
    laterality_source: LateralitySource | None = None
    visit: str | None = None
    field: str | None = None


def parse_laterality(value: str | None, where: str) -> Laterality | None:
    """``"R"``/``"L"`` from a manifest or tag value (R, L, right, left, OD, OS; case-insensitive)."""
    if value is None or not value.strip():
        return None
    try:
        return _LATERALITY_WORDS[value.strip().lower()]
    except KeyError:
        raise ManifestError(f"{where}: laterality {value!r} is not one of R, L, right, left, OD, OS") from None


def is_dicom(path: Path) -> bool:
    """True when the file carries the DICOM preamble (``DICM`` at byte 128)."""
    try:
        with path.open("rb") as stream:
            stream.seek(128)
            return stream.read(4) == b"DICM"
    except OSError:
        return False


def dicom_metadata(path: Path) -> dict[str, str | None]:
    """Patient id and laterality from a DICOM file's tags (pixel data not read)."""
    import pydicom

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as error:  # pydicom raises many types for broken headers
        raise InputError(path, f"DICOM header unreadable: {error}", "corrupt") from None
    laterality = dataset.get("ImageLaterality") or dataset.get("Laterality")
    return {
        "patient_id": str(dataset.get("PatientID") or "").strip() or None,
        "laterality": str(laterality).strip() if laterality else None,
        "visit": str(dataset.get("StudyDate") or "").strip() or None,
    }


def _stem_id(path: Path, base: Path | None) -> str:
    relative = path.relative_to(base) if base is not None and path.is_relative_to(base) else Path(path.name)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(relative.with_suffix("")).replace("\\", "/").replace("/", "__"))


def _file_input(path: Path, base: Path | None, **known: Any) -> ScreeningInput:
    """A file's input record; tags and the file name fill what ``known`` (a manifest row) lacks."""
    laterality, source = known.pop("laterality", None), known.pop("laterality_source", None)
    patient_id, visit = known.pop("patient_id", None), known.pop("visit", None)
    if is_dicom(path):
        try:
            tags = dicom_metadata(path)
        except InputError:
            tags = {}
        patient_id = patient_id or tags.get("patient_id")
        visit = visit or tags.get("visit")
        if laterality is None and tags.get("laterality"):
            laterality, source = parse_laterality(tags["laterality"], f"{path} (DICOM)"), "dicom"
    if laterality is None:
        laterality = laterality_from_name(path.name)
        source = "file_name" if laterality is not None else None
    return ScreeningInput(
        id=known.pop("id", None) or _stem_id(path, base), path=path, patient_id=patient_id,
        laterality=laterality, laterality_source=source, visit=visit, **known,
    )  # fmt: skip


def read_manifest(path: Path) -> list[ScreeningInput]:
    """Rows of a CSV manifest: a ``path`` column (relative to the manifest's folder or absolute)
    and optional ``id``, ``patient_id``, ``laterality``, ``visit``, ``field`` columns."""
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "path" not in columns:
            raise ManifestError(f"{path}: a manifest needs a 'path' column; it has {columns}")
        inputs = []
        for line, row in enumerate(reader, start=2):
            cells = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if not cells.get("path"):
                continue
            where = f"{path}, line {line}"
            file = Path(cells["path"])
            file = file if file.is_absolute() else path.parent / file
            laterality = parse_laterality(cells.get("laterality"), where)
            inputs.append(
                _file_input(
                    file, path.parent, id=cells.get("id") or None, patient_id=cells.get("patient_id") or None,
                    laterality=laterality, laterality_source="manifest" if laterality else None,
                    visit=cells.get("visit") or None, field=cells.get("field") or None,
                )
            )  # fmt: skip
    return inputs


def collect_inputs(items: Iterable[Any]) -> Iterator[ScreeningInput]:
    """``ScreeningInput`` records from files, folders (recursive), ``.csv`` manifests, DICOM files,
    (H, W, 3) uint8 arrays, PIL images or ready ``ScreeningInput`` records, in the given order.

    A folder yields its images in sorted order (``drscreen.io.find_images``). A path that does not
    exist still yields a record, so that it is reported as an error with the others. Ids that
    collide get a ``-2``, ``-3`` ... suffix.
    """
    seen: dict[str, int] = {}
    for record in _records(items):
        count = seen.get(record.id, 0) + 1
        seen[record.id] = count
        yield record if count == 1 else ScreeningInput(**{**record.__dict__, "id": f"{record.id}-{count}"})


def _records(items: Iterable[Any]) -> Iterator[ScreeningInput]:
    for index, item in enumerate(items):
        if isinstance(item, ScreeningInput):
            yield item
        elif isinstance(item, np.ndarray):
            yield ScreeningInput(id=f"array_{index:05d}", image=item)
        elif hasattr(item, "convert") and hasattr(item, "size"):  # a PIL image
            yield ScreeningInput(id=f"image_{index:05d}", image=np.asarray(item.convert("RGB")))
        else:
            path = Path(item).expanduser()
            if path.is_dir():
                for file in find_images(path, recursive=True):
                    yield _file_input(file, path)
            elif path.suffix.lower() == ".csv":
                yield from read_manifest(path)
            else:
                yield _file_input(path, None)

