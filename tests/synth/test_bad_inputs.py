"""The bad-input corpus: every file gets exactly its expected outcome through read_image + the gate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from drscreen.io import InputError, read_image
from drscreen.preprocess import PreprocessConfig, Preprocessor, QualityIssue
from drscreen.synth.bad_inputs import BadInput, write_bad_inputs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[BadInput]:
    return write_bad_inputs(tmp_path_factory.mktemp("bad_inputs"))


def _outcome(path: Path, preprocessor: Preprocessor) -> tuple[str, str | None]:
    try:
        image = read_image(path)
    except InputError as error:
        return "unreadable", error.code
    quality = preprocessor.prepare(image).quality
    assert quality is not None
    return ("gradable", None) if quality.usable else ("ungradable", quality.reasons[0].value)


def test_corpus_has_at_least_40_named_kinds(corpus: list[BadInput]) -> None:
    assert len(corpus) >= 40
    assert len({item.name for item in corpus}) == len(corpus)
    assert all(item.path.is_file() and item.path.stem == item.name for item in corpus)
    counts = Counter(item.expected_outcome for item in corpus)
    assert min(counts["unreadable"], counts["ungradable"], counts["gradable"]) >= 8
    codes = {item.expected_reason for item in corpus if item.expected_outcome == "ungradable"}
    assert codes <= {issue.value for issue in QualityIssue}
    assert {"blank", "noise", "not_fundus", "channel_saturated"} <= codes


@pytest.mark.parametrize("settings", [{}, {"size": 224, "enhancement": "ben_graham"}], ids=["default", "photograph"])
def test_every_file_gets_exactly_its_expected_outcome(corpus: list[BadInput], settings: dict) -> None:
    preprocessor = Preprocessor(PreprocessConfig(quality_gate=True, **settings))
    wrong = {}
    for item in corpus:
        got = _outcome(item.path, preprocessor)
        if got != (item.expected_outcome, item.expected_reason):
            wrong[item.name] = (got, (item.expected_outcome, item.expected_reason))
    assert not wrong


def test_corpus_is_deterministic(tmp_path: Path, corpus: list[BadInput]) -> None:
    again = {item.name: item.path.read_bytes() for item in write_bad_inputs(tmp_path)}
    assert all(again[item.name] == item.path.read_bytes() for item in corpus)
