#!/usr/bin/env bash
# Train, cross-validate and pack drscreen's lesion segmenter (docs/model_card.md, "Lesion model").
#   bash scripts/train_lesion_segmenter.sh [DATA_ROOT] [benchmarks/lesion_cv.py options ...]
# DATA_ROOT holds idrid-seg-subset/ (default ../shared/data). In one go (benchmarks/lesion_cv.py):
# 60 synthetic 512 px images (drscreen synth, IDRiD layout), the green optic-disc contour removed
# from the 30 real images, 5-fold cross-validation by image (benchmarks/results/real/lesion_cv.{json,md}),
# the final u2net_xs on all 30 real + the synthetic training images; then packs it into
# runs/lesion-cv/drscreen_lesions.pt (not into the package: on the CPU budget it is worse than the
# shipped lesion model; use it with drscreen screen --lesion-model FILE). The CPU recipe is 8 epochs of 256 px patches (2-8
# minutes a training on 2 shared cores, 6 trainings); GPU variant: append --device cuda --epochs 200
# (finished runs under runs/lesion-cv are reused: remove the folder to retrain).
#   bash scripts/train_lesion_segmenter.sh --decoder [DATA_ROOT] [options ...]
# trains the shipped grader's own lesion decoder instead (configs/lesion_decoder.yaml: encoder frozen,
# 512 px, 20 epochs, about 8 minutes a training on 2 otherwise idle cores, 6 trainings) and packs it
# into runs/lesion-cv/drscreen_lesion_decoder.pt (configs/lesion_decoder_model_info.yaml): the
# shipped lesion model, src/drscreen/weights/drscreen_lesions.pt, is that file.
set -euo pipefail
cd "$(dirname "$0")/.."
DECODER=false
if [[ ${1:-} == --decoder ]]; then
    DECODER=true
    shift
fi
DATA_ROOT=${1:-../shared/data}
shift || true
WORK=runs/lesion-cv

if $DECODER; then
    python benchmarks/lesion_cv.py --data-root "$DATA_ROOT" --out benchmarks/results/real --work "$WORK" --final \
        --config configs/lesion_decoder.yaml --info configs/lesion_decoder_model_info.yaml "$@"
    drscreen model pack "$WORK/runs/lesion_decoder-final/checkpoints/last.pt" --out "$WORK/drscreen_lesion_decoder.pt" \
        --photograph-preprocess '{quality_gate: false}' --info "$WORK/lesion_decoder-lesion_model_info.yaml"
    drscreen model info "$WORK/drscreen_lesion_decoder.pt"
    exit 0
fi

python benchmarks/lesion_cv.py --data-root "$DATA_ROOT" --out benchmarks/results/real --work "$WORK" --final "$@"
drscreen model pack "$WORK/runs/final/checkpoints/last.pt" --out "$WORK/drscreen_lesions.pt" \
    --photograph-preprocess '{size: 512, crop_to_fov: true, enhancement: clahe, quality_gate: false}' \
    --info "$WORK/lesion_model_info.yaml"
drscreen model info "$WORK/drscreen_lesions.pt"
