"""Benchmark the quality gate: pass rates on every real source, outcomes on the bad-input corpus.

Each real image goes the way a user's photograph goes: ``drscreen.io.read_image``, then
``Preprocessor.prepare`` with the shipped model's ``photograph_preprocess`` settings and the gate
forced on (as ``drscreen screen`` does). Sources (in ``--data``, default ``../shared/data``):
APTOS-224 validation (549), EyePACS-256 (all 1,860, or every ``--eyepacs-step``-th file), IDRiD
(30), DRIVE (20), full-resolution originals (12). Then every file of
``drscreen.synth.write_bad_inputs`` must get exactly its expected outcome. A real image is
counted as passing when it is usable; the script exits with status 1 when a corpus file gets a
different outcome than expected or when any real source's pass rate is below ``--min-pass-rate``.

Usage: ``python benchmarks/gate.py [--data ../shared/data] [--out benchmarks/results]``.
Writes ``gate.json`` and ``gate.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from drscreen.io import InputError, read_image
from drscreen.models.pretrained import load_pretrained
from drscreen.preprocess import Preprocessor
from drscreen.synth.bad_inputs import write_bad_inputs

REPO_ROOT = Path(__file__).resolve().parents[1]


def real_sources(data: Path, eyepacs_step: int) -> dict[str, list[Path]]:
    """Image paths per real source (sorted; EyePACS-256 every ``eyepacs_step``-th file)."""
    with (data / "aptos2019-224" / "val.csv").open() as handle:
        aptos_val = [row["id_code"] for row in csv.DictReader(handle)]
    return {
        "APTOS-224 val": [data / "aptos2019-224" / "images" / f"{name}.jpg" for name in aptos_val],
        "EyePACS-256": sorted((data / "eyepacs-256" / "images").iterdir())[::eyepacs_step],
        "IDRiD (half resolution)": sorted((data / "idrid-seg-subset" / "images").iterdir()),
        "DRIVE training": sorted((data / "drive" / "training" / "images").iterdir()),
        "full-resolution originals": sorted(
            path for path in (data / "fullres-samples").rglob("*") if path.suffix.lower() in {".jpeg", ".jpg", ".png"}
        ),
    }


def outcome(path: Path, preprocessor: Preprocessor) -> tuple[str, str | None, list[str], float]:
    """(outcome, first reason, all reasons, seconds in prepare) for one file."""
    try:
        image = read_image(path)
    except InputError as error:
        return "unreadable", error.code, [error.code], 0.0
    start = time.perf_counter()
    quality = preprocessor.prepare(image).quality
    seconds = time.perf_counter() - start
    assert quality is not None
    reasons = [reason.value for reason in quality.reasons]
    return ("gradable", None, reasons, seconds) if quality.usable else ("ungradable", reasons[0], reasons, seconds)


def markdown(result: dict) -> str:
    """The pass/reject tables of ``result``."""
    lines = [
        "| real source | images | pass | pass rate | rejected (reason: count) | prepare ms (median) |",
        "|---|---|---|---|---|---|",
    ]
    for name, source in result["real"].items():
        rejected = ", ".join(f"{reason}: {count}" for reason, count in source["rejected"].items()) or "-"
        lines.append(
            f"| {name} | {source['images']} | {source['passed']} | {100 * source['pass_rate']:.1f} % | "
            f"{rejected} | {source['median_prepare_ms']:.0f} |"
        )
    lines += ["", "| bad or awkward input | expected | got | all reasons | ok |", "|---|---|---|---|---|"]
    for item in result["corpus"]:
        expected = item["expected_outcome"] + (f": {item['expected_reason']}" if item["expected_reason"] else "")
        got = item["outcome"] + (f": {item['reason']}" if item["reason"] else "")
        lines.append(f"| `{item['name']}` | {expected} | {got} | {', '.join(item['reasons']) or '-'} | "
                     f"{'yes' if item['ok'] else '**no**'} |")
    summary = result["corpus_summary"]
    lines += ["", f"Corpus: {summary['matched']} of {summary['files']} files got exactly their expected outcome."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when every goal is met, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("DRSCREEN_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    parser.add_argument("--eyepacs-step", type=int, default=1, help="use every n-th EyePACS-256 file")
    parser.add_argument("--min-pass-rate", type=float, default=0.97)
    args = parser.parse_args(argv)

    config = replace(load_pretrained().photograph_preprocess, quality_gate=True)
    preprocessor = Preprocessor(config)
    real: dict[str, dict] = {}
    if (args.data / "README.md").is_file():
        for name, paths in real_sources(args.data, args.eyepacs_step).items():
            outcomes = [outcome(path, preprocessor) for path in paths]
            rejected = Counter(reason for kind, reason, _, _ in outcomes if kind != "gradable")
            failures = {path.name: reasons for path, (kind, _, reasons, _) in zip(paths, outcomes) if kind != "gradable"}
            times = sorted(seconds for *_, seconds in outcomes)
            passed = len(paths) - len(failures)
            real[name] = {
                "images": len(paths),
                "passed": passed,
                "pass_rate": round(passed / len(paths), 4),
                "rejected": dict(rejected.most_common()),
                "rejected_files": failures,
                "median_prepare_ms": round(1000 * times[len(times) // 2], 1),
            }
            print(f"{name}: {passed}/{len(paths)} pass {dict(rejected)}", file=sys.stderr)
    else:
        print(f"real data not found at {args.data}; only the corpus is run", file=sys.stderr)

    corpus = []
    with tempfile.TemporaryDirectory() as folder:
        for item in write_bad_inputs(folder):
            kind, reason, reasons, _ = outcome(item.path, preprocessor)
            ok = (kind, reason) == (item.expected_outcome, item.expected_reason)
            corpus.append({
                "name": item.name, "file": item.path.name, "description": item.description,
                "expected_outcome": item.expected_outcome, "expected_reason": item.expected_reason,
                "outcome": kind, "reason": reason, "reasons": reasons, "ok": ok,
            })
    matched = sum(item["ok"] for item in corpus)
    result = {
        "command": "python benchmarks/gate.py" + (f" --eyepacs-step {args.eyepacs_step}" if args.eyepacs_step > 1 else ""),
        "preprocess": config.to_dict(),
        "platform": platform.platform(),
        "real": real,
        "corpus": corpus,
        "corpus_summary": {"files": len(corpus), "matched": matched},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gate.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "gate.md").write_text(markdown(result))
    print(markdown(result))
    goals_met = matched == len(corpus) and all(s["pass_rate"] >= args.min_pass_rate for s in real.values())
    return 0 if goals_met else 1


if __name__ == "__main__":
    sys.exit(main())
