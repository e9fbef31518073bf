#!/usr/bin/env bash
# Reproduce the README's results tables on the synthetic benchmark, on both mesh tracks (see README "Results").
#   bash scripts/reproduce_results.sh [WORKDIR]        (default ./bench-work)
# Steps: synth the benchmark -> train EgoPressDiff (UV, image space) and the three per-frame baselines
# (classification, regression, PressureFormer style), once per training seed -> predict the test participants
# with the annotated mesh (the paper's protocol) and with the estimated mesh (deployment) -> evaluate ->
# one table per track (WORKDIR/table-annotated.md, WORKDIR/table-estimated.md; with several SEEDS also
# WORKDIR/table-TRACK-seeds.md: mean ± sd over the seeds).
# Env:
#   CONFIGS    training configs (default configs/benchmark, the 2-core CPU budget; configs/benchmark-gpu: the GPU budget)
#   SEEDS      training seeds (default "0"); seed N > 0 trains into runs/NAME-sN with --set train.seed=N
#   MAX_STEPS  optimizer steps instead of the configs' budget (quick looks only; a trained run with another
#              budget is refused rather than reused: use another WORKDIR)
#   IMAGE      1 (default): also the paper-faithful image-space EgoPressDiff ($CONFIGS/egopressdiff-image.yaml);
#              0 skips it. IMAGE_BASELINES=1 adds the image-space per-frame baselines (baseline-{cls,reg}-image).
#   TRACKS     mesh tracks to predict (default "annotated estimated")
#   STEPS      EgoPressDiff sampling steps (default: the model's sample_steps); STEPS=choose picks them per run on
#              the VALIDATION participant (benchmarks/sampling_steps.py over CHOOSE_STEPS, default "1 2 3 4 6 8",
#              and sampling seeds CHOOSE_SEEDS, default "0 1 2": the best mean Volumetric IoU at one sample;
#              WORKDIR/sampling-steps-val-RUN.json, which ship_models.py then uses for the shipped model)
#   FLOOR      EgoPressDiff's output floor in kPa (default 0: the raw samples); FLOOR=choose picks it per run on
#              the VALIDATION participant (never the test set): with STEPS=choose together with the steps, in the
#              same sweep (CHOOSE_FLOORS, default "0 0.1 0.25 0.5 0.75 1": at most the field's 1 kPa contact
#              threshold), one floor for both tracks, as the shipped model's was; otherwise per track with
#              scripts/choose_floor.py at the given steps
#   SAMPLES    the extra EgoPressDiff (UV) row with the mean of SAMPLES samples and its uncertainty
#              (default 8; 1 skips it)
# Trained runs in WORKDIR/runs are reused; an interrupted training resumes from its last checkpoint.
# Ship the result with: python scripts/ship_models.py WORKDIR
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-bench-work}
EPD=${EPD:-.venv/bin/egopressdiff}
PY=${PY:-.venv/bin/python}
CONFIGS=${CONFIGS:-configs/benchmark}
SEEDS=${SEEDS:-0}
IMAGE=${IMAGE:-1}
IMAGE_BASELINES=${IMAGE_BASELINES:-0}
TRACKS=${TRACKS:-annotated estimated}
SAMPLES=${SAMPLES:-8}
FLOOR=${FLOOR:-0}
STEPS=${STEPS:-}
CHOOSE_STEPS=${CHOOSE_STEPS:-1 2 3 4 6 8}
CHOOSE_SEEDS=${CHOOSE_SEEDS:-0 1 2}
CHOOSE_FLOORS=${CHOOSE_FLOORS:-0 0.1 0.25 0.5 0.75 1}
budget=()
[ -n "${MAX_STEPS:-}" ] && budget=(--max-steps "$MAX_STEPS")
mkdir -p "$W/runs" "$W/pred" "$W/metrics"
[ -d "$W/data" ] || $EPD synth "$W/data" --participants 8 --sequences 8 --frames 64 --seed 1 --workers 2

names=(egopressdiff-uv baseline-cls-uv baseline-reg-uv baseline-pformer-uv)
[ "$IMAGE" = 1 ] && names+=(egopressdiff-image)
[ "$IMAGE_BASELINES" = 1 ] && names+=(baseline-cls-image baseline-reg-image)
run_name() { if [ "$2" = 0 ]; then echo "$1"; else echo "$1-s$2"; fi; }  # config name, seed

# what to do with a run folder: "done" (trained to the budget asked for now), "resume" (checkpoints, or stopped
# early), "new"; a run finished with another budget is refused rather than reused
run_state() {  # run folder, config file
  $PY scripts/run_state.py "$1" "$2" "${MAX_STEPS:-}"
}

for seed in $SEEDS; do
  for name in "${names[@]}"; do
    run="$W/runs/$(run_name "$name" "$seed")"
    state=$(run_state "$run" "$CONFIGS/$name.yaml")
    [ "$state" = done ] && continue
    resume=()
    [ "$state" = resume ] && resume=(--resume)
    OMP_NUM_THREADS=1 $EPD train --config "$CONFIGS/$name.yaml" --data "$W/data" --output "$run" \
      --set train.seed="$seed" "${budget[@]}" --no-progress "${resume[@]}"
  done
done

run_one() {  # track, row name, checkpoint, [predict options]
  local track=$1 name=$2 ckpt=$3; shift 3
  mkdir -p "$W/pred/$track" "$W/metrics/$track"
  $EPD predict --checkpoint "$ckpt" --data "$W/data" --output "$W/pred/$track/$name" --split test \
    --mesh "$track" --no-progress "$@"
  $EPD evaluate --pred "$W/pred/$track/$name" --data "$W/data" --json "$W/metrics/$track/$name.json" --no-progress
  made+=("$W/metrics/$track/$name.json")
}
steps_for() {  # run name -> its sampling steps (STEPS; chosen on validation with STEPS=choose; empty: the model's)
  if [ "$STEPS" != choose ]; then echo "$STEPS"; return; fi
  sweep_val "$1" >/dev/null
  $PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["chosen_steps"])' "$W/sampling-steps-val-$1.json"
}
sweep_val() {  # run name: the validation sweep of steps (and, with FLOOR=choose, floors), made once
  local f="$W/sampling-steps-val-$1.json" floors=$FLOOR
  [ "$FLOOR" = choose ] && floors=$CHOOSE_FLOORS
  # a sweep made with other floors is made again (the choice depends on them)
  # shellcheck disable=SC2086
  if [ ! -f "$f" ] || ! $PY -c 'import json, sys; d = json.load(open(sys.argv[1]))
sys.exit(d.get("floors_kpa", [0.0]) != sorted(float(x) for x in sys.argv[2:]))' "$f" $floors; then
    # shellcheck disable=SC2086
    $PY benchmarks/sampling_steps.py --checkpoint "$W/runs/$1" --data "$W/data" --split val \
      --steps $CHOOSE_STEPS --seeds $CHOOSE_SEEDS --floors $floors --json "$f" >&2
  fi
}
floor_for() {  # track, run name, steps -> the floor to use (FLOOR, or chosen on validation with FLOOR=choose)
  if [ "$FLOOR" != choose ]; then echo "$FLOOR"; return; fi
  if [ "$STEPS" = choose ]; then  # chosen with the steps: the model's one default, on both tracks
    sweep_val "$2" >/dev/null
    $PY -c 'import json, sys; print("%g" % json.load(open(sys.argv[1]))["chosen_floor_kpa"])' "$W/sampling-steps-val-$2.json"
    return
  fi
  local f="$W/floor-$2-$1.txt" steps=()
  [ -n "$3" ] && steps=(--steps "$3")
  if [ ! -f "$f" ]; then
    $EPD predict --checkpoint "$W/runs/$2" --data "$W/data" --output "$W/pred/$1-val/$2" --split val \
      --mesh "$1" --floor 0 --no-progress "${steps[@]}" >&2
    $PY scripts/choose_floor.py "$W/pred/$1-val/$2" "$W/data" --best-to "$f" >&2
  fi
  cat "$f"
}

for track in $TRACKS; do
  made=()  # this track's metrics files from this invocation: the table shows exactly these rows
  for seed in $SEEDS; do
    for name in "${names[@]}"; do
      r=$(run_name "$name" "$seed")
      case $name in
        egopressdiff-*)
          st=$(steps_for "$r")
          steps=()
          [ -n "$st" ] && steps=(--steps "$st")
          floor=$(floor_for "$track" "$r" "$st")
          tag=; [ "$floor" = 0 ] || tag="-floor$floor"  # rows (and folders) of another floor never mix
          run_one "$track" "$r$tag" "$W/runs/$r" "${steps[@]}" --floor "$floor"
          if [ "$name" = egopressdiff-uv ] && [ "$SAMPLES" -gt 1 ]; then
            run_one "$track" "$r-${SAMPLES}samples$tag" "$W/runs/$r" "${steps[@]}" --floor "$floor" --samples "$SAMPLES"
          fi ;;
        *) run_one "$track" "$r" "$W/runs/$r" ;;
      esac
    done
  done
  echo "== $track mesh (test participants) =="
  $PY scripts/results_table.py "${made[@]}" --output "$W/table-$track.md"
  if [ "$(echo $SEEDS | wc -w)" -gt 1 ]; then
    echo "== $track mesh, over the training seeds $SEEDS (mean ± sd) =="
    $PY scripts/results_table.py "${made[@]}" --group-seeds --output "$W/table-$track-seeds.md"
  fi
done
