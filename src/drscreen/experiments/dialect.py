"""The YAML dialect of experiment files: ``extends`` chains merged key by key, ``${variables}``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from drscreen.experiments.spec import ExperimentError

_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def read_experiment_file(path: str | Path) -> dict[str, Any]:
    """The mapping of the experiment file at ``path`` with its ``extends`` chain merged in."""
    path = Path(path)
    chain: list[Path] = []
    merged: dict[str, Any] = {}
    while True:
        if path.resolve() in chain:
            raise ExperimentError(f"{path}: 'extends' loops back to itself")
        chain.append(path.resolve())
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ExperimentError(f"{path}: cannot read: {error}") from None
        if not isinstance(raw, dict) or set(raw) - {"extends", "config", "experiment"}:
            raise ExperimentError(f"{path}: the top level may hold only extends, config and experiment")
        parent = raw.pop("extends", None)
        merged = deep_merge(raw, merged)
        if parent is None:
            return merged
        path = path.parent / parent


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` merged onto ``base``: mappings key by key, anything else replaced by ``top``'s."""
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def substitute(value: Any, variables: Mapping[str, str]) -> Any:
    """``value`` with every ``${name}`` in its strings replaced from ``variables``."""
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                raise ExperimentError(f"unknown variable ${{{name}}} in {value!r}; known: {', '.join(variables)}")
            return variables[name]

        return _VARIABLE.sub(replace, value)
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    return value
