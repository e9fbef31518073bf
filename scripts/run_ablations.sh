#!/usr/bin/env bash
# The ablation tables of the README: EgoPressDiff-tiny (UV conditioning) with one component switched off at a time,
# each trained with exactly the full model's config and budget ($CONFIGS/egopressdiff-uv.yaml), evaluated on the
# test participants on both mesh tracks (WORKDIR/ablations/table-TRACK.md).
#   bash scripts/run_ablations.sh WORKDIR [NAME ...]
# WORKDIR is reproduce_results.sh's: WORKDIR/data, and WORKDIR/runs/egopressdiff-uv[-sN] is the "full" model
# (trained here if missing, with the same command).
# NAMEs (default: all): full no-depth no-vertices no-dc no-posenet no-uv-mask-weight pooled
#   (pooled: the paper's one pooled vertex token per frame instead of the per-vertex UV-region tokens).
# Env: as reproduce_results.sh -- CONFIGS (default configs/benchmark, the CPU budget; configs/benchmark-gpu the GPU
# budget), SEEDS (default "0"; seed N > 0 trains into NAME-sN with --set train.seed=N), MAX_STEPS (optimizer steps
# instead of the config's, quick looks only: at 600 CPU-budget steps every variant still predicted noise, so
# short-budget ablations say nothing; BUDGET is the old name), TRACKS (default "annotated estimated"), STEPS (sampling
# steps, default the model's), FLOOR (kPa, default 0), TRAIN_ONLY=1.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:?usage: run_ablations.sh WORKDIR [NAME ...]}
shift
EPD=${EPD:-.venv/bin/egopressdiff}
PY=${PY:-.venv/bin/python}
CONFIGS=${CONFIGS:-configs/benchmark}
SEEDS=${SEEDS:-0}
TRACKS=${TRACKS:-annotated estimated}
FLOOR=${FLOOR:-0}
MAX_STEPS=${MAX_STEPS:-${BUDGET:-}}
steps=()
[ -n "${STEPS:-}" ] && steps=(--steps "$STEPS")
budget=()
[ -n "$MAX_STEPS" ] && budget=(--max-steps "$MAX_STEPS")
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(full no-depth no-vertices no-dc no-posenet no-uv-mask-weight pooled)
mkdir -p "$W/ablations/runs" "$W/ablations/pred" "$W/ablations/metrics"
[ -d "$W/data" ] || $EPD synth "$W/data" --participants 8 --sequences 8 --frames 64 --seed 1 --workers 2
config="$CONFIGS/egopressdiff-uv.yaml"

# "done" / "resume" / "new" for a run folder; a run finished with another budget is refused (as in reproduce_results.sh)
run_state() {  # run folder
  $PY scripts/run_state.py "$1" "$config" "$MAX_STEPS"
}

made=$(mktemp)  # the metrics files of this invocation, one a line: the tables show exactly these rows
trap 'rm -f "$made"' EXIT
for seed in $SEEDS; do
  tag=; [ "$seed" = 0 ] || tag="-s$seed"
  for name in "${names[@]}"; do
    run="$W/ablations/runs/$name$tag"
    case $name in
      full) flag=(); run="$W/runs/egopressdiff-uv$tag" ;;
      no-depth) flag=(--set model.use_depth=false) ;;
      no-vertices) flag=(--set model.use_vertices=false) ;;
      no-dc) flag=(--set model.use_dc_calibration=false) ;;
      no-posenet) flag=(--set model.use_posenet=false) ;;
      no-uv-mask-weight) flag=(--set model.use_uv_mask_weight=false) ;;
      pooled) flag=(--set model.vertex_tokens=pooled) ;;
      *) echo "unknown ablation $name" >&2; exit 2 ;;
    esac
    state=$(run_state "$run")
    if [ "$state" != done ]; then
      resume=()
      [ "$state" = resume ] && resume=(--resume)
      OMP_NUM_THREADS=1 $EPD train --config "$config" --data "$W/data" --output "$run" --set train.seed="$seed" \
        "${budget[@]}" "${flag[@]}" --no-progress "${resume[@]}"
    fi
    [ "${TRAIN_ONLY:-0}" = 1 ] && continue
    for track in $TRACKS; do
      mkdir -p "$W/ablations/pred/$track" "$W/ablations/metrics/$track"
      OMP_NUM_THREADS=1 $EPD predict --checkpoint "$run" --data "$W/data" --output "$W/ablations/pred/$track/$name$tag" \
        --split test --mesh "$track" "${steps[@]}" --floor "$FLOOR" --no-progress
      $EPD evaluate --pred "$W/ablations/pred/$track/$name$tag" --data "$W/data" \
        --json "$W/ablations/metrics/$track/$name$tag.json" --no-progress
      echo "$W/ablations/metrics/$track/$name$tag.json" >> "$made"
    done
  done
done
[ "${TRAIN_ONLY:-0}" = 1 ] && exit 0
group=()
[ "$(echo $SEEDS | wc -w)" -gt 1 ] && group=(--group-seeds)
for track in $TRACKS; do
  echo "== ablations, $track mesh (test participants) =="
  mapfile -t files < <(grep "/metrics/$track/" "$made")
  $PY scripts/results_table.py "${files[@]}" "${group[@]}" --output "$W/ablations/table-$track.md"
done
