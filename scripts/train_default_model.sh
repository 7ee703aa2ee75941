#!/usr/bin/env bash
# Train, evaluate and pack drscreen's default model into the package (docs/model_card.md).
#   bash scripts/train_default_model.sh [DATA_ROOT] [-o KEY=VALUE ...]
# DATA_ROOT holds aptos2019-224/ (default ../shared/data). Extra -o overrides go to every step,
# e.g. -o optim.epochs=30 on a GPU. Training is the "default" row of
# configs/results/aptos_224.yaml (= configs/default.yaml), which first trains the grading network
# of its "ce-window" row (runs/results/aptos-224/ce-window/seed0) and then fits the DME and lesion heads
# on it (runs/results/aptos-224/default/seed0); writes src/drscreen/weights/drscreen_default.pt.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${1:-../shared/data}
shift || true
SYNTH=runs/synth-bg384
APTOS="$DATA_ROOT/aptos2019-224"
RUN=runs/results/aptos-224/default/seed0
ARGS=(-o "data.val.0.root=$APTOS" "$@")
BEST=(--checkpoint "$RUN/checkpoints/best.pt")

# 400 synthetic images (320 train, 80 test) in the IDRiD layout with APTOS-224's Ben Graham look.
[ -f "$SYNTH/synth_truth.csv" ] || drscreen synth --out "$SYNTH" --n 400 --size 384 --seed 11 --ben-graham
drscreen experiment configs/results/aptos_224.yaml --runs default --data-root "$DATA_ROOT" --out runs/results "$@"
# Validation with 1,000-resample bootstrap intervals, and the synthetic test part.
drscreen evaluate configs/default.yaml "${ARGS[@]}" "${BEST[@]}" --split val --out "$RUN/eval-val-bootstrap"
drscreen evaluate configs/default.yaml "${ARGS[@]}" "${BEST[@]}" --split val --tta flips --out "$RUN/eval-val-tta-bootstrap"
drscreen evaluate configs/default.yaml "${ARGS[@]}" "${BEST[@]}" --split test --out "$RUN/eval-synthetic-test"
drscreen model pack "$RUN/checkpoints/best.pt" --out src/drscreen/weights/drscreen_default.pt \
    --photograph-preprocess '{crop_to_fov: true, enhancement: ben_graham}' \
    --info configs/default_model_info.yaml \
    --metrics aptos2019_val="$RUN/eval-val-bootstrap/metrics.json" \
    --metrics aptos2019_val_tta="$RUN/eval-val-tta-bootstrap/metrics.json" \
    --metrics synthetic_test="$RUN/eval-synthetic-test/metrics.json"
drscreen model info
