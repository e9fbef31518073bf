#!/usr/bin/env bash
# The ablation table of the README (issue 5): EgoPressDiff-tiny (UV conditioning) with one component
# switched off at a time, trained with exactly the shipped model's config and budget
# (configs/benchmark/egopressdiff-uv.yaml, 2,500 steps), evaluated on the test participants.
#   bash scripts/run_ablations.sh WORKDIR [NAME ...]
# WORKDIR is reproduce_results.sh's: WORKDIR/data, and WORKDIR/runs/egopressdiff-uv is the "full" model.
# NAMEs (default: all): full no-depth no-vertices no-dc no-posenet no-uv-mask-weight.
# Env: CONFIGS (default configs/benchmark, the CPU budget; configs/benchmark-gpu for the GPU budget), STEPS (sampling steps, 4 as the shipped model), FLOOR (kPa; default the shipped model's, chosen on validation),
# BUDGET (optimizer steps; set it only for quick looks -- at 600 steps every variant still predicts
# noise (validation Volumetric IoU 0.03), so short-budget ablations say nothing), TRAIN_ONLY=1.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:?usage: run_ablations.sh WORKDIR [NAME ...]}
shift
EPD=${EPD:-.venv/bin/egopressdiff}
STEPS=${STEPS:-4}
CONFIGS=${CONFIGS:-configs/benchmark}
FLOOR=${FLOOR:-$(.venv/bin/python -c "import json; from egopressdiff.shipped import resolve_checkpoint as r; print(json.load(open(r('synthetic-egopressdiff')/'config.json'))['output_floor_kpa'])")}
budget=()
[ -n "${BUDGET:-}" ] && budget=(--set train.max_steps="$BUDGET")
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(full no-depth no-vertices no-dc no-posenet no-uv-mask-weight)
mkdir -p "$W/ablations/runs" "$W/ablations/pred" "$W/ablations/metrics"
[ -d "$W/data" ] || $EPD synth "$W/data" --participants 8 --sequences 8 --frames 64 --seed 1 --workers 2
for name in "${names[@]}"; do
  run="$W/ablations/runs/$name"
  case $name in
    full) flag=(); [ -z "${BUDGET:-}" ] && run="$W/runs/egopressdiff-uv" ;;
    no-depth) flag=(--set model.use_depth=false) ;;
    no-vertices) flag=(--set model.use_vertices=false) ;;
    no-dc) flag=(--set model.use_dc_calibration=false) ;;
    no-posenet) flag=(--set model.use_posenet=false) ;;
    no-uv-mask-weight) flag=(--set model.use_uv_mask_weight=false) ;;
    *) echo "unknown ablation $name" >&2; exit 2 ;;
  esac
  if [ ! -f "$run/model/config.json" ]; then
    if [ -d "$run/checkpoints" ]; then resume=--resume; else resume=; fi
    OMP_NUM_THREADS=1 $EPD train --config "$CONFIGS/egopressdiff-uv.yaml" --data "$W/data" --output "$run" \
      "${budget[@]}" "${flag[@]}" --no-progress $resume
  fi
  [ "${TRAIN_ONLY:-0}" = 1 ] && continue
  OMP_NUM_THREADS=1 $EPD predict --checkpoint "$run" --data "$W/data" --output "$W/ablations/pred/$name" \
    --split test --steps "$STEPS" --floor "$FLOOR" --no-progress
  $EPD evaluate --pred "$W/ablations/pred/$name" --data "$W/data" --json "$W/ablations/metrics/$name.json"
done
[ "${TRAIN_ONLY:-0}" = 1 ] || .venv/bin/python scripts/results_table.py "$W"/ablations/metrics/*.json
