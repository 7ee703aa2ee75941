"""Evaluation entries of an experiment spec (split or datasets, TTA, grade decoding)."""

from __future__ import annotations

import pytest

from drscreen.experiments.spec import evaluation_target


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("val", ("val", "none", None)),
        ([{"name": "csv", "root": "x"}], ([{"name": "csv", "root": "x"}], "none", None)),
        ({"split": "val", "tta": "flips"}, ("val", "flips", None)),
        ({"split": "val", "dr_decoding": "argmax"}, ("val", "none", "argmax")),
        ({"datasets": [{"name": "csv", "root": "x"}]}, ([{"name": "csv", "root": "x"}], "none", None)),
    ],
)
def test_evaluation_targets(entry: object, expected: tuple[object, str, str | None]) -> None:
    assert evaluation_target(entry) == expected


@pytest.mark.parametrize(
    "entry",
    [
        "training",
        {"split": "val", "datasets": []},
        {"split": "val", "tta": "rotate"},
        {"tta": "flips"},
        {"split": "val", "dr_decoding": "median"},
    ],
)
def test_bad_evaluation_targets_are_refused(entry: object) -> None:
    with pytest.raises(ValueError):
        evaluation_target(entry)
