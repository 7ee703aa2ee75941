"""What ``drscreen synth`` does once its arguments are parsed (parser: ``drscreen.commands.synth``)."""

from __future__ import annotations

import argparse
from collections import Counter

from drscreen.synth.config import SynthConfig
from drscreen.synth.writers import read_truth, write_dataset


def run(args: argparse.Namespace) -> int:
    """Writes the data set and prints counts per DR and DME grade."""
    if args.n < 1:
        raise SystemExit("drscreen synth: --n must be >= 1")
    try:
        out = write_dataset(
            args.out, args.n, args.size, args.seed, args.layout,
            grade_distribution=args.grades, label_noise=args.label_noise, workers=args.workers, progress=not args.quiet,
            config=SynthConfig(ben_graham=args.ben_graham),
        )  # fmt: skip
    except FileExistsError as error:
        raise SystemExit(f"drscreen synth: {error}") from None
    rows = read_truth(out)
    dr = Counter(int(row["dr_grade"]) for row in rows)
    dme = Counter(int(row["dme_grade"]) for row in rows)
    noisy = sum(int(row["label_noisy"]) for row in rows)
    print(f"wrote {len(rows)} synthetic images ({args.layout} layout, {args.size} px, seed {args.seed}) to {out}")
    print("DR grade  " + "  ".join(f"{grade}: {dr[grade]}" for grade in range(5)))
    print("DME grade " + "  ".join(f"{grade}: {dme[grade]}" for grade in range(3)))
    if args.label_noise > 0:
        print(f"label noise {args.label_noise:g}: {noisy} image(s) with a recorded label != computed grade")
    return 0
