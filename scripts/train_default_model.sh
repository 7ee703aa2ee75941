#!/usr/bin/env bash
# Train, calibrate, pack and evaluate drscreen's default model, version 4 (docs/model_card.md):
# writes src/drscreen/weights/drscreen_default.pt.
#   bash scripts/train_default_model.sh [DATA_ROOT] [--gpu]
# DATA_ROOT holds aptos2019-224/ and eyepacs-256/ (default ../shared/data).
#   1. configs/grader.yaml: the whole network of version 3 (commit 2f05a30, the APTOS fine-tune of
#      configs/results/aptos_224.yaml) fine-tuned on APTOS 2019 + EyePACS-256 through the one
#      photograph path, source-balanced, per-source validation; 6 epochs on the CPU, 30 with --gpu.
#   2. Temperature and referable operating point (sensitivity >= 0.90) fitted on validation,
#      metrics with bootstrap intervals on every part (python -m drscreen.engine.head_refit).
#   3. configs/grader_heads.yaml: that network frozen, DME head and lesion decoder fitted on
#      synthetic images through the same path.
#   4. Packed with its temperature, operating point and card; scored on the untouched test parts
#      (APTOS val.csv, EyePACS patient-level test part) through the command-line evaluation.
# Resume an interrupted training with the same command plus: drscreen train CONFIG --resume -o ...
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${1:-../shared/data}
MODE=${2:-cpu}
INIT=runs/grader/init
mkdir -p "$INIT"
[ -f "$INIT/shipped_v3.pt" ] || git show 2f05a30:src/drscreen/weights/drscreen_default.pt > "$INIT/shipped_v3.pt"
python -c "import torch, drscreen.models as m; torch.save({'model': m.load_pretrained('$INIT/shipped_v3.pt').model.state_dict()}, '$INIT/shipped_state.pt')"
python -m drscreen.data.grader_splits "$DATA_ROOT" runs/splits
EPOCHS=6
[ "$MODE" = "--gpu" ] && EPOCHS=30
GRADER=(-o run.name=grader -o optim.epochs=$EPOCHS)
drscreen train configs/grader.yaml "${GRADER[@]}"
GRADER+=(-o model.checkpoint=runs/grader/checkpoints/best.pt)
python -m drscreen.engine.head_refit features configs/grader.yaml "${GRADER[@]}" --parts val test
python -m drscreen.engine.head_refit calibrate configs/grader.yaml "${GRADER[@]}" --info configs/default_model_info.yaml
[ -f runs/synth384/synth_truth.csv ] || drscreen synth --out runs/synth384 --n 400 --size 384 --seed 11
drscreen train configs/grader_heads.yaml -o model.checkpoint=runs/grader/checkpoints/best.pt
drscreen evaluate configs/grader_heads.yaml --checkpoint runs/grader-heads/checkpoints/last.pt --split test --out runs/grader-heads/eval-synthetic-test
OUT=src/drscreen/weights/drscreen_default.pt
# The final epoch of the heads (their validation images are synthetic test images: no choice on them).
PACK=(drscreen model pack runs/grader-heads/checkpoints/last.pt --out "$OUT"
    --temperature "$(python -c "import json; print(json.load(open('runs/grader/card.json'))['temperature'])")"
    --info runs/grader/model_info.yaml --metrics synthetic_test=runs/grader-heads/eval-synthetic-test/metrics.json)
"${PACK[@]}"
# The untouched test parts through the packed model, its photograph path and operating point;
# then packed again with these metrics (docs/results.md, section 5).
drscreen evaluate --model "$OUT" --dataset aptos2019 --root "$DATA_ROOT/aptos2019-224" --split val --inputs photograph --out runs/default-v4/eval-aptos-test
drscreen evaluate --model "$OUT" --dataset eyepacs --root runs/splits/eyepacs-256 --dataset-option labels_csv=test.csv --inputs photograph --out runs/default-v4/eval-eyepacs-test
"${PACK[@]}" --metrics aptos2019_test=runs/default-v4/eval-aptos-test/metrics.json --metrics eyepacs_test=runs/default-v4/eval-eyepacs-test/metrics.json
python benchmarks/photographs.py --data-root "$DATA_ROOT" --out runs/default-v4/photographs
drscreen model info "$OUT"
