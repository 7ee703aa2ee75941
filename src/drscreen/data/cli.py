"""What ``drscreen data`` does once its arguments are parsed (parser: ``drscreen.commands.data``)."""

from __future__ import annotations

import argparse
import inspect
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from tqdm import tqdm

from drscreen.data.catalog import DATASETS, list_datasets, load_dataset
from drscreen.data.errors import DatasetError
from drscreen.data.sample import Sample
from drscreen.data.splits import patient_key, split_by_patient, write_splits
from drscreen.grading import DME_GRADE_NAMES, DR_GRADE_NAMES
from drscreen.io import InputError, read_image

_UNKNOWN = "none"


def run_list(args: argparse.Namespace) -> int:
    """``drscreen data list``: one line per adapter with its splits and description."""
    for name in list_datasets():
        entry = DATASETS.get(name)
        splits = ", ".join(entry.metadata.get("splits", ())) or "-"
        print(f"{name:20s} splits: {splits:16s} {entry.metadata.get('description', '')}")
    return 0


def run_summary(args: argparse.Namespace) -> int:
    """``drscreen data summary``: counts per split, grade, eye and mask; 2 when the data cannot be loaded."""
    samples = _load(args)
    if samples is None:
        return 2
    print(summarize(samples, f"{args.dataset} ({args.root})"))
    if args.check_images:
        failures: Counter[str] = Counter()
        examples: dict[str, InputError] = {}
        for sample in tqdm(samples, desc="reading images", unit="img"):
            try:
                read_image(sample.image_path)
            except InputError as error:
                failures[error.code] += 1
                examples.setdefault(error.code, error)
        print(f"\nimages readable: {len(samples) - sum(failures.values())} of {len(samples)}")
        for code, count in failures.most_common():
            print(f"  {code}: {count}, e.g. {examples[code]}")
        return 1 if failures else 0
    return 0


def run_split(args: argparse.Namespace) -> int:
    """``drscreen data split``: a patient-level split written as CSV; 2 when the data cannot be loaded."""
    samples = _load(args)
    if samples is None:
        return 2
    try:
        splits = split_by_patient(samples, args.fractions, seed=args.seed, stratify=args.stratify)
    except ValueError as error:
        print(f"drscreen data split: error: {error}", file=sys.stderr)
        return 2
    write_splits(splits, args.out)
    for name, members in splits.items():
        patients = len({patient_key(s) for s in members})
        print(f"{name:6s} {len(members):7,d} images {patients:7,d} patients  DR {_grade_counts(members)}")
    print(f"wrote {args.out}")
    return 0


def summarize(samples: Sequence[Sample], title: str) -> str:
    """A plain-text report: images and patients, grade tables per split, eyes, lesion masks."""
    patients = {patient_key(s) for s in samples}
    without_id = sum(s.patient_id is None for s in samples)
    lines = [f"{title}: {len(samples):,} images, {len(patients):,} patients"]
    if without_id:
        lines[0] += f" ({without_id:,} images without patient id count as their own patient)"
    if any(s.dr_grade is not None for s in samples):
        lines += ["", *_grade_table(samples, "DR grade", lambda s: s.dr_grade, DR_GRADE_NAMES)]
    if any(s.dme_grade is not None for s in samples):
        lines += ["", *_grade_table(samples, "DME grade", lambda s: s.dme_grade, DME_GRADE_NAMES)]
    eyes = Counter(s.eye or _UNKNOWN for s in samples)
    if set(eyes) != {_UNKNOWN}:
        counts = ", ".join(f"{eye} {eyes[eye]:,}" for eye in ("left", "right", _UNKNOWN) if eyes[eye])
        lines += ["", f"eye: {counts}"]
    masks = [s.lesion_masks for s in samples if s.lesion_masks is not None]
    if masks:
        lines += ["", f"lesion masks ({len(masks):,} annotated images)", f"{'':8s}{'present':>9s}{'absent':>9s}"]
        for code in sorted({code for annotation in masks for code in annotation}):
            present = sum(annotation.get(code) is not None for annotation in masks)
            absent = sum(code in annotation and annotation[code] is None for annotation in masks)
            lines.append(f"{code:8s}{present:9,d}{absent:9,d}")
    return "\n".join(lines)


def _grade_table(
    samples: Sequence[Sample], label: str, grade_of: Callable[[Sample], int | None], scale: dict[int, str]
) -> list[str]:
    columns = [*map(str, scale), _UNKNOWN, "total"]
    rows = [f"{label:10s}" + "".join(f"{c:>8s}" for c in columns)]
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.split or "(no split)", []).append(sample)
    if list(groups) == ["(no split)"]:
        groups = {"all": list(samples)}
    elif len(groups) > 1:
        groups["all"] = list(samples)
    for name, members in groups.items():
        counts = Counter(grade_of(s) for s in members)
        cells = [counts[g] for g in scale] + [counts[None], len(members)]
        rows.append(f"{name:10s}" + "".join(f"{n:8,d}" for n in cells))
    return rows


def _grade_counts(samples: Sequence[Sample]) -> str:
    counts = Counter(s.dr_grade for s in samples)
    return " ".join(f"{g}:{counts[g]}" for g in DR_GRADE_NAMES) + f" {_UNKNOWN}:{counts[None]}"


def _load(args: argparse.Namespace) -> list[Sample] | None:
    """The samples the arguments name, or ``None`` after printing why they cannot be loaded."""
    try:
        options = _parse_options(args.dataset, args.option)
        return load_dataset(args.dataset, args.root, args.split, **options)
    except (DatasetError, InputError, KeyError, ValueError) as error:
        print(f"drscreen data: error: {error}", file=sys.stderr)
        return None


def _parse_options(dataset: str, pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as keyword arguments of the adapter (values parsed as YAML scalars)."""
    accepted = [
        name for name, p in inspect.signature(DATASETS.get(dataset).factory).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in accepted:
            choices = ", ".join(accepted) or "no options"
            raise ValueError(f"bad option {pair!r}: {dataset} accepts {choices} as KEY=VALUE")
        options[key] = yaml.safe_load(value) if value else ""
    return options
