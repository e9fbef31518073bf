#!/usr/bin/env bash
# Reproduce the README's results table on the synthetic benchmark (CPU; see README "Results").
#   bash benchmarks/reproduce_results.sh [WORKDIR]        (default ./bench-work)
# Steps: synth the benchmark -> train the three shipped models -> predict the test participants ->
# evaluate -> print the table. Set STEPS / SAMPLES to change EgoPressDiff's sampling.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-bench-work}
EPD=${EPD:-.venv/bin/egopressdiff}
STEPS=${STEPS:-8}
SAMPLES=${SAMPLES:-4}
mkdir -p "$W/runs" "$W/pred" "$W/metrics"
[ -d "$W/data" ] || $EPD synth "$W/data" --participants 8 --sequences 8 --frames 64 --seed 1 --workers 2
for name in egopressdiff-uv baseline-cls-uv baseline-reg-uv; do
  if [ ! -f "$W/runs/$name/model/config.json" ]; then
    if [ -d "$W/runs/$name/checkpoints" ]; then resume=--resume; else resume=; fi
    OMP_NUM_THREADS=1 $EPD train --config "configs/benchmark/$name.yaml" --data "$W/data" --output "$W/runs/$name" $resume
  fi
  extra=()
  [ "$name" = egopressdiff-uv ] && extra=(--steps "$STEPS" --samples "$SAMPLES")
  $EPD predict --checkpoint "$W/runs/$name" --data "$W/data" --output "$W/pred/$name" --split test "${extra[@]}"
  $EPD evaluate --pred "$W/pred/$name" --data "$W/data" --json "$W/metrics/$name.json"
done
.venv/bin/python benchmarks/results_table.py "$W"/metrics/*.json
