#!/usr/bin/env bash
# Reproduce the README's results table on the synthetic benchmark (CPU, or a GPU with CONFIGS=configs/benchmark-gpu; see README "Results").
#   bash scripts/reproduce_results.sh [WORKDIR]        (default ./bench-work)
# Steps: synth the benchmark -> train the three shipped models -> choose EgoPressDiff's output
# floor on the VALIDATION participant -> predict the test participants -> evaluate -> table.
# Env: STEPS (EgoPressDiff sampling steps, default 4: the shipped default, chosen on validation), FLOOR (skip the validation choice),
# SAMPLES (the extra row with the mean of SAMPLES samples, default 8; 1 skips it),
# CONFIGS (training configs, default configs/benchmark = the 2-core CPU budget; configs/benchmark-gpu is the
# larger budget the shipped models were trained with on a GPU), IMAGE (1, the default: also train and
# evaluate the paper-faithful image-space variants: $CONFIGS/egopressdiff-image.yaml and baseline-*-image.yaml; 0 skips them).
# Ship the result with: python scripts/ship_models.py WORKDIR "$(cat WORKDIR/floor.txt)" 4
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-bench-work}
EPD=${EPD:-.venv/bin/egopressdiff}
PY=${PY:-.venv/bin/python}
STEPS=${STEPS:-4}
SAMPLES=${SAMPLES:-8}
CONFIGS=${CONFIGS:-configs/benchmark}
mkdir -p "$W/runs" "$W/pred" "$W/metrics"
[ -d "$W/data" ] || $EPD synth "$W/data" --participants 8 --sequences 8 --frames 64 --seed 1 --workers 2
IMAGE=${IMAGE:-1}
names=(egopressdiff-uv baseline-cls-uv baseline-reg-uv)
[ "$IMAGE" = 1 ] && names+=(egopressdiff-image baseline-cls-image baseline-reg-image)
for name in "${names[@]}"; do
  if [ ! -f "$W/runs/$name/model/config.json" ]; then
    if [ -d "$W/runs/$name/checkpoints" ]; then resume=--resume; else resume=; fi
    OMP_NUM_THREADS=1 $EPD train --config "$CONFIGS/$name.yaml" --data "$W/data" --output "$W/runs/$name" $resume
  fi
done
# EgoPressDiff's output floor: the best validation Volumetric IoU over a few floors (never the test set)
choose_floor() {  # run name, file for the chosen floor
  $EPD predict --checkpoint "$W/runs/$1" --data "$W/data" --output "$W/pred/$1-val" --split val --steps "$STEPS" --floor 0
  $PY scripts/choose_floor.py "$W/pred/$1-val" "$W/data" --best-to "$2"
}
if [ -z "${FLOOR:-}" ]; then
  choose_floor egopressdiff-uv "$W/floor.txt"
  FLOOR=$(cat "$W/floor.txt")
fi
run_one() {  # name checkpoint [predict options]
  local name=$1 ckpt=$2; shift 2
  $EPD predict --checkpoint "$ckpt" --data "$W/data" --output "$W/pred/$name" --split test "$@"
  $EPD evaluate --pred "$W/pred/$name" --data "$W/data" --json "$W/metrics/$name.json"
}
run_one egopressdiff-uv "$W/runs/egopressdiff-uv" --steps "$STEPS" --floor "$FLOOR"
run_one egopressdiff-uv-nofloor "$W/runs/egopressdiff-uv" --steps "$STEPS" --floor 0
[ "$SAMPLES" -gt 1 ] && run_one "egopressdiff-uv-${SAMPLES}samples" "$W/runs/egopressdiff-uv" --steps "$STEPS" \
  --floor "$FLOOR" --samples "$SAMPLES"
run_one baseline-cls-uv "$W/runs/baseline-cls-uv"
run_one baseline-reg-uv "$W/runs/baseline-reg-uv"
if [ "$IMAGE" = 1 ]; then  # its own floor, chosen on validation the same way
  choose_floor egopressdiff-image "$W/floor-image.txt"
  run_one egopressdiff-image "$W/runs/egopressdiff-image" --steps "$STEPS" --floor "$(cat "$W/floor-image.txt")"
  run_one baseline-cls-image "$W/runs/baseline-cls-image"
  run_one baseline-reg-image "$W/runs/baseline-reg-image"
fi
$PY scripts/results_table.py "$W"/metrics/*.json
