#!/usr/bin/env bash
# Train, evaluate and pack drscreen's default model into the package (docs/model_card.md).
#   bash scripts/train_default_model.sh [DATA_ROOT] [-o KEY=VALUE ...]
# DATA_ROOT holds aptos2019-224/ (default ../shared/data). Extra -o overrides go to every step,
# e.g. -o data.preprocess.size=224 -o optim.epochs=30 on a GPU. Writes runs/default/ and
# src/drscreen/weights/drscreen_default.pt.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_ROOT=${1:-../shared/data}
shift || true
SYNTH=runs/synth-bg384
APTOS="$DATA_ROOT/aptos2019-224"
ARGS=(-o "data.train.0.root=$APTOS" -o "data.val.0.root=$APTOS" "$@")

# 400 synthetic images (320 train, 80 test) in the IDRiD layout with APTOS-224's Ben Graham look.
[ -f "$SYNTH/synth_truth.csv" ] || drscreen synth --out "$SYNTH" --n 400 --size 384 --seed 11 --ben-graham
drscreen train configs/default.yaml "${ARGS[@]}"
drscreen evaluate configs/default.yaml "${ARGS[@]}" --split val --out runs/default/eval-val
drscreen evaluate configs/default.yaml "${ARGS[@]}" --split val --tta flips --out runs/default/eval-val-tta
drscreen evaluate configs/default.yaml "${ARGS[@]}" --split test --out runs/default/eval-synthetic-test
drscreen model pack runs/default/checkpoints/best.pt --out src/drscreen/weights/drscreen_default.pt \
    --photograph-preprocess '{crop_to_fov: true, enhancement: ben_graham}' \
    --info configs/default_model_info.yaml \
    --metrics aptos2019_val=runs/default/eval-val/metrics.json \
    --metrics aptos2019_val_tta=runs/default/eval-val-tta/metrics.json \
    --metrics synthetic_test=runs/default/eval-synthetic-test/metrics.json
drscreen model info
