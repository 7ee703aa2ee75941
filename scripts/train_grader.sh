#!/usr/bin/env bash
# Train, calibrate, pack and evaluate drscreen's multi-source grader (docs/model_card.md, "The
# multi-source grader"): writes $RUN/drscreen_grader.pt (runs/grader/ on the CPU). It is a
# candidate for src/drscreen/weights/drscreen_default.pt; this script does not replace the default.
#   bash scripts/train_grader.sh [DATA_ROOT] [--gpu]
# DATA_ROOT holds aptos2019-224/ and eyepacs-256/ (default ../shared/data).
#   CPU (how runs/grader/drscreen_grader.pt was made): the default model's (version 3) network is
#       kept, its deepest feature maps are cached once, and its DR layer is refitted on both
#       sources (python -m drscreen.engine.head_refit, configs/grader.yaml).
#   --gpu: the whole network is fine-tuned by the engine on the same data, path, sampling and
#       monitor (drscreen train configs/grader.yaml -o optim.epochs=30), then calibrated alike.
# Resume an interrupted engine run with: drscreen train configs/grader.yaml --resume [-o ...]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${1:-../shared/data}
MODE=${2:-cpu}
INIT=runs/grader/init
# The version-3 shipped model (commit 2f05a30) is the starting network: its encoder is the APTOS
# fine-tune of configs/results/aptos_224.yaml (rows ce-window, default).
mkdir -p "$INIT"
[ -f "$INIT/shipped_v3.pt" ] || git show 2f05a30:src/drscreen/weights/drscreen_default.pt > "$INIT/shipped_v3.pt"
python -c "import torch, drscreen.models as m; torch.save({'model': m.load_pretrained('$INIT/shipped_v3.pt').model.state_dict()}, '$INIT/shipped_state.pt')"
python -m drscreen.data.grader_splits "$DATA_ROOT" runs/splits
if [ "$MODE" = "--gpu" ]; then
    ARGS=(-o run.name=grader-gpu -o optim.epochs=30)
    drscreen train configs/grader.yaml "${ARGS[@]}"
    ARGS+=(-o model.checkpoint=runs/grader-gpu/checkpoints/best.pt)
    RUN=runs/grader-gpu
else
    ARGS=(-o optim.epochs=40 -o optim.lr=1.0e-3)
    RUN=runs/grader
    python -m drscreen.engine.head_refit features configs/grader.yaml "${ARGS[@]}"
    python -m drscreen.engine.head_refit fit configs/grader.yaml "${ARGS[@]}"
fi
[ "$MODE" = "--gpu" ] && python -m drscreen.engine.head_refit features configs/grader.yaml "${ARGS[@]}" --parts val test
python -m drscreen.engine.head_refit calibrate configs/grader.yaml "${ARGS[@]}" --info configs/grader_model_info.yaml
OUT="$RUN/drscreen_grader.pt"
drscreen model pack "$RUN/checkpoints/best.pt" --out "$OUT" \
    --temperature "$(python -c "import json; print(json.load(open('$RUN/card.json'))['temperature'])")" \
    --info "$RUN/model_info.yaml"
# The untouched test parts through the packed model and its photograph path (docs/results.md).
drscreen evaluate --model "$OUT" --dataset aptos2019 --root "$DATA_ROOT/aptos2019-224" --split val --inputs photograph --out "$RUN/eval-aptos-test-photograph"
drscreen evaluate --model "$OUT" --dataset eyepacs --root runs/splits/eyepacs-256 --dataset-option labels_csv=test.csv --inputs photograph --out "$RUN/eval-eyepacs-test-photograph"
python benchmarks/photographs.py --data-root "$DATA_ROOT" --model "$OUT" --out "$RUN/photographs"
drscreen model info "$OUT"
