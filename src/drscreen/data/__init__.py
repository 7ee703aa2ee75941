"""Datasets as lists of ``Sample`` records, read from the official layouts, and patient-level splits.

Public API: ``Sample``, ``LESION_UNION``, ``DatasetError``, ``DATASETS``, ``load_dataset``,
``list_datasets``, ``read_seg_subset``, ``split_by_patient``, ``patient_kfold``, ``write_splits``, ``read_splits``.
Adapters: idrid-segmentation, idrid-grading, idrid-seg-subset, aptos2019, eyepacs, messidor2,
ddr, deepdrid, csv, folder (docs/data.md shows each layout).
"""

from drscreen.data import ddr, deepdrid, generic, idrid, kaggle, messidor  # noqa: F401  (register adapters)
from drscreen.data.catalog import DATASETS, list_datasets, load_dataset
from drscreen.data.errors import DatasetError
from drscreen.data.idrid import read_seg_subset
from drscreen.data.sample import LESION_UNION, Eye, Sample
from drscreen.data.splits import patient_kfold, read_splits, split_by_patient, write_splits

__all__ = [
    "DATASETS",
    "LESION_UNION",
    "DatasetError",
    "Eye",
    "Sample",
    "list_datasets",
    "load_dataset",
    "patient_kfold",
    "read_seg_subset",
    "read_splits",
    "split_by_patient",
    "write_splits",
]
