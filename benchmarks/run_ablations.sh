#!/usr/bin/env bash
# The ablation table of the README (issue 5): EgoPressDiff-tiny (UV conditioning) with one component
# switched off at a time, every run with the same (reduced) training budget, evaluated on the test
# participants of the synthetic benchmark.
#   bash benchmarks/run_ablations.sh WORKDIR [NAME ...]
# WORKDIR holds the benchmark data (WORKDIR/data; made as in reproduce_results.sh when absent).
# NAMEs (default: all): full no-depth no-vertices no-dc no-posenet no-uv-mask-weight.
# BUDGET (default 600 optimizer steps), STEPS (8), FLOOR (kPa, the shipped model's floor) from the env;
# TRAIN_ONLY=1 trains and stops (run again without it to predict and evaluate).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:?usage: run_ablations.sh WORKDIR [NAME ...]}
shift
EPD=${EPD:-.venv/bin/egopressdiff}
BUDGET=${BUDGET:-600}
STEPS=${STEPS:-8}
FLOOR=${FLOOR:-$(.venv/bin/python -c "import json,sys; from egopressdiff.shipped import resolve_checkpoint as r; print(json.load(open(r('synthetic-egopressdiff')/'config.json'))['output_floor_kpa'])")}
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(full no-depth no-vertices no-dc no-posenet no-uv-mask-weight)
mkdir -p "$W/ablations/runs" "$W/ablations/pred" "$W/ablations/metrics"
[ -d "$W/data" ] || $EPD synth "$W/data" --participants 8 --sequences 8 --frames 64 --seed 1 --workers 2
for name in "${names[@]}"; do
  case $name in
    full) flag=() ;;
    no-depth) flag=(--set model.use_depth=false) ;;
    no-vertices) flag=(--set model.use_vertices=false) ;;
    no-dc) flag=(--set model.use_dc_calibration=false) ;;
    no-posenet) flag=(--set model.use_posenet=false) ;;
    no-uv-mask-weight) flag=(--set model.use_uv_mask_weight=false) ;;
    *) echo "unknown ablation $name" >&2; exit 2 ;;
  esac
  run="$W/ablations/runs/$name"
  if [ ! -f "$run/model/config.json" ]; then
    if [ -d "$run/checkpoints" ]; then resume=--resume; else resume=; fi
    OMP_NUM_THREADS=1 $EPD train --config configs/benchmark/egopressdiff-uv.yaml --data "$W/data" --output "$run" \
      --set train.max_steps="$BUDGET" --set train.warmup_steps=50 --set train.checkpoint_every=200 \
      --set train.val_every=0 "${flag[@]}" --no-progress $resume
  fi
  [ "${TRAIN_ONLY:-0}" = 1 ] && continue
  OMP_NUM_THREADS=1 $EPD predict --checkpoint "$run" --data "$W/data" --output "$W/ablations/pred/$name" \
    --split test --steps "$STEPS" --floor "$FLOOR" --no-progress
  $EPD evaluate --pred "$W/ablations/pred/$name" --data "$W/data" --json "$W/ablations/metrics/$name.json"
done
[ "${TRAIN_ONLY:-0}" = 1 ] || .venv/bin/python benchmarks/results_table.py "$W"/ablations/metrics/*.json
