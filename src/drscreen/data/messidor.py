"""Messidor-2 (ADCIS images) with the adjudicated grades of Krause et al. (Kaggle "messidor2-dr-grades")."""

from __future__ import annotations

from pathlib import Path, PurePath

from drscreen.data._tables import (
    ImageIndex,
    first_existing,
    handle_missing,
    log,
    log_excluded,
    parse_grade,
    read_table,
    splits_to_load,
)
from drscreen.data.catalog import DATASETS
from drscreen.data.errors import DatasetError
from drscreen.data.sample import Eye, Sample
from drscreen.io import SUPPORTED_EXTENSIONS

LABEL_FILE = "messidor_data.csv"
PAIRS_FILE = "messidor-2.csv"
LABEL_COLUMNS = ("image_id", "adjudicated_dr_grade", "adjudicated_dme", "adjudicated_gradable")
#: ``adjudicated_dme`` = 1 means hard exudates within one disc diameter of the fovea: IDRiD risk 2.
REFERABLE_DME_AS_IDRID = 2


@DATASETS.register(
    "messidor2",
    description="Messidor-2: messidor_data.csv (adjudicated grades) + IMAGES/ [+ messidor-2.csv pairs]",
    splits=(),
)
def load_messidor2(root: Path, split: str | None = None, *, skip_missing: bool = False) -> list[Sample]:
    """Messidor-2: ``messidor_data.csv`` + ``IMAGES/``, with the ADCIS pairs file when present.

    Ungradable images (``adjudicated_gradable`` = 0) are excluded. DME: Messidor-2's binary
    referable DME (exudates within 1 disc diameter of the fovea) is IDRiD risk 2; its 0 cannot tell
    IDRiD 0 from 1 and is therefore ``None``. ``messidor-2.csv`` (``left;right`` image pairs, one
    examination per row) gives ``eye`` and ``patient_id`` (the left image's stem); without it
    every image is its own patient, since the file names do not identify patients.
    """
    splits_to_load(split, (), "messidor2")
    labels = root / LABEL_FILE
    index = ImageIndex(first_existing([root / "IMAGES", root / "images"], "Messidor-2 IMAGES folder"))
    pairs = _read_pairs(root / PAIRS_FILE) if (root / PAIRS_FILE).is_file() else {}
    if not pairs:
        log.warning("messidor2: no %s in %s, so each image is its own patient", PAIRS_FILE, root)
    rows = read_table(labels, required=LABEL_COLUMNS)
    samples: list[Sample] = []
    missing: list[str] = []
    ungradable = 0
    for row in rows:
        where = f"{labels}, line {row.line}"
        if row.get("adjudicated_gradable") == "0":
            ungradable += 1
            continue
        image_id = row.get("image_id")
        image = index.find(image_id)
        if image is None:
            missing.append(image_id)
            continue
        dme = parse_grade(row.get("adjudicated_dme"), "DME", where)
        if dme not in (None, 0, 1):
            raise DatasetError(f"{where}: adjudicated_dme must be 0 or 1, got {dme}")
        eye, patient = pairs.get(image_id.lower(), (None, None))
        samples.append(
            Sample(
                id=image_id,
                image_path=image,
                dr_grade=parse_grade(row.get("adjudicated_dr_grade"), "DR", where),
                dme_grade=REFERABLE_DME_AS_IDRID if dme == 1 else None,
                eye=eye,
                patient_id=patient,
                dataset="messidor2",
            )
        )
    log_excluded("messidor2", ungradable, "adjudicated_gradable = 0")
    handle_missing(missing, total=len(rows) - ungradable, listing=labels, folder=index.folder,
                   skip_missing=skip_missing)
    return samples


def _read_pairs(path: Path) -> dict[str, tuple[Eye, str]]:
    """{lower-case image name: (eye, patient id)} from the semicolon-separated ``left;right`` file."""
    pairs: dict[str, tuple[Eye, str]] = {}
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split(";")]
        if len(cells) < 2 or not all(PurePath(c).suffix.lower() in SUPPORTED_EXTENSIONS for c in cells[:2]):
            continue  # header or blank line
        left, right = cells[:2]
        patient = PurePath(left).stem
        pairs[left.lower()] = ("left", patient)
        pairs[right.lower()] = ("right", patient)
    return pairs
