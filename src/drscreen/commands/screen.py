"""``drscreen screen``: fundus photographs in, a screening folder with report.html out.

Light module (argparse only): the model and the pipeline are imported when the command runs.
Exit status: 0 every input screened (ungradable photographs count as screened: they have a
result), 1 usage error, 3 some inputs could not be read (listed in errors.csv). Under ``torchrun``
each rank screens its shard of the inputs into the same folder and rank 0 merges the tables and
the report (``drscreen.screening.distributed``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drscreen.report import RunSummary
    from drscreen.screening.distributed import RankInfo

#: Exit status for usage errors (bad arguments, unreadable manifest, unknown model file).
EXIT_USAGE = 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``screen`` sub-command."""
    parser = subparsers.add_parser(
        "screen",
        help="screen fundus photographs into results (JSON, CSV, overlays) and a report.html",
        description="Screen photographs with the shipped model (or --model): quality gate, DR and DME grades, "
        "referable decision, lesion maps and region findings, optic disc and fovea, an explanation map, and "
        "per-patient recommendations (research output, not medical advice). A rerun of the same command "
        "computes only what is missing or changed. Exit status: 0 all screened, 1 usage error, "
        "3 some inputs could not be read (errors.csv). Output layout: docs/usage.md.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders (searched recursively), CSV manifests (path column; optional id, "
                        "patient_id, laterality, visit, field) or DICOM files")  # fmt: skip
    parser.add_argument("--out", required=True, help="output folder (created; reused by a rerun)")
    parser.add_argument("--model", help="packed model file (default: the shipped model)")
    parser.add_argument("--lesion-model", default="default", metavar="PACKED|default|none",
                        help="lesion model whose maps give the lesion findings, overlays and optic disc: 'default' "
                        "(the shipped drscreen_lesions.pt, 512 px: docs/model_card.md), a packed file (e.g. from "
                        "scripts/train_lesion_segmenter.sh), or 'none' for the grading model's own 224 px maps "
                        "(one network instead of two: about a third of the CPU time)")  # fmt: skip
    parser.add_argument(
        "--operating-point", metavar="THRESHOLD|sensitivity=S",
        help="referral threshold on the referable score, e.g. 0.4, or a target sensitivity on the model's "
        "packed validation curve, e.g. sensitivity=0.9 (default: the model's packed operating point, else 0.5)",
    )  # fmt: skip
    parser.add_argument("--labels", help="CSV of reference grades (id, dr_grade[, dme_grade]) for the report's metrics")
    parser.add_argument("--no-explain", action="store_true", help="skip the explanation maps (faster)")
    parser.add_argument("--overlay-size", type=int, default=1024,
                        help="long side (px) of previews and overlay layers; 0 = full resolution (default 1024)")  # fmt: skip
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default cpu)")
    parser.add_argument(
        "--runtime", choices=("torch", "onnx", "openvino"), default="torch",
        help="run the networks with PyTorch (default), ONNX Runtime (onnx) or OpenVINO (openvino: the fastest on "
        "x86 CPUs, bf16 with --amp bf16); with onnx and openvino, --model and --lesion-model may be .onnx files "
        "from drscreen export, --int8 ones too (explanations need the PyTorch weights: a packed file)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=8, help="photographs per forward pass (default 8)")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes that decode and prepare photographs while the model runs; 0 = none "
                        "(default: min(4, CPU count); one input is always read in the main process)")  # fmt: skip
    parser.add_argument("--amp", default="fp32",
                        help="precision of the network: fp32 (default, the validated precision), bf16 (autocast; "
                        "fast on CPUs with AVX-512 BF16 or AMX and on GPUs), fp16, or auto (bf16/fp16 on a GPU, "
                        "fp32 on the CPU)")  # fmt: skip
    parser.add_argument("--channels-last", action="store_true",
                        help="run the network in NHWC memory format (faster convolutions on GPUs and recent CPUs)")
    parser.add_argument("--jpeg-decode", choices=("auto", "cpu", "device"), default="auto",
                        help="where JPEG files are decoded: cpu (DCT-scaled, in the worker processes), device "
                        "(in batches on --device with torchvision: nvJPEG on a GPU), auto (default: device on a "
                        "GPU, else cpu); the workers still prepare every photograph")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar (errors are still printed)")
    parser.set_defaults(func=_run_screen)


def _run_screen(args: argparse.Namespace) -> int:
    from drscreen.io import InputError
    from drscreen.report import screen
    from drscreen.screening import ManifestError
    from drscreen.screening.distributed import rank_from_environment

    if args.batch_size < 1 or args.overlay_size < 0 or (args.workers is not None and args.workers < 0):
        print("drscreen screen: --batch-size must be >= 1, --overlay-size and --workers >= 0", file=sys.stderr)
        return EXIT_USAGE
    rank = rank_from_environment()
    options = {"labels": args.labels, "overlay_size": args.overlay_size or None, "workers": args.workers,
               "command": shlex.join(["drscreen", *sys.argv[1:]])}  # fmt: skip
    try:
        if rank is not None:
            return _run_ranked(args, rank, options)
        summary = screen(args.inputs, args.out, progress=not args.quiet, **_screener_settings(args), **options)
    except (ManifestError, FileNotFoundError, InputError, ValueError) as error:
        print(f"drscreen screen: {error}", file=sys.stderr)
        return EXIT_USAGE
    _print_summary(summary)
    return summary.exit_code


def _screener_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Screener`` settings given on the command line (``screen()`` takes the same keywords);
    ``--lesion-model none`` becomes None."""
    return {
        "model": args.model, "operating_point": args.operating_point, "explain": not args.no_explain,
        "device": args.device, "amp": args.amp, "batch_size": args.batch_size, "runtime": args.runtime,
        "lesion_model": None if args.lesion_model.lower() == "none" else args.lesion_model,
        "channels_last": args.channels_last, "jpeg_decode": args.jpeg_decode,
    }  # fmt: skip


def _run_ranked(args: argparse.Namespace, rank: RankInfo, options: dict[str, Any]) -> int:
    """One rank of ``torchrun ... drscreen screen``: screen this rank's shard into the shared
    folder; after a barrier, rank 0 screens the whole list again, which reuses every stored result
    and rebuilds results.csv, patients.csv, errors.csv and the report from all ranks' results."""
    from drscreen.report import ScreeningFolder, screen
    from drscreen.screening import Screener, collect_inputs
    from drscreen.screening.distributed import barrier, process_group, rank_device, shard

    records = list(collect_inputs(args.inputs))
    with process_group():
        screener = Screener(**{**_screener_settings(args), "device": rank_device(args.device, rank.local_rank)})
        lead = rank.rank == 0
        if lead:
            ScreeningFolder(args.out)  # removes a killed run's unfinished writes before any rank writes
        barrier()
        screen(shard(records, rank.rank, rank.world_size), args.out, screener=screener,
               progress=lead and not args.quiet, shard=True, **{**options, "labels": None})  # fmt: skip
        barrier()  # every shard is written
        if not lead:
            return 0
        summary = screen(records, args.out, screener=screener, progress=False, **options)
    _print_summary(summary)
    return summary.exit_code


def _print_summary(summary: RunSummary) -> None:
    print(
        f"screened {summary.n_screened} of {summary.n_inputs} inputs ({summary.n_ungradable} ungradable, "
        f"{summary.n_unreadable} unreadable, {summary.n_referable} referable; {summary.n_reused} reused "
        f"from an earlier run)"
    )
    print(f"report: {summary.report}")
