#!/usr/bin/env bash
# Quick start: sets everything up in ./.venv, then runs the demo or the tests.
#   bash run.sh demo [demo options]   -> egopressdiff demo (synthetic data + shipped small model)
#   bash run.sh test [pytest options] -> the test suite
# GPU machines: EGOPRESSDIFF_TORCH_SPEC="torch==2.13.0" is the default (the CPU build here);
# set it to the build you want, e.g. EGOPRESSDIFF_TORCH_SPEC="torch --index-url <your CUDA index>".
set -euo pipefail
cd "$(dirname "$0")"
VENV=${EGOPRESSDIFF_VENV:-.venv}
TORCH_SPEC=${EGOPRESSDIFF_TORCH_SPEC:-torch==2.13.0}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# pip, minus the harmless "location is ignored" noise of this machine's pip config.
pipq() {
  local out rc=0
  out=$("$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" | grep -v "is ignored: it is neither" >&2 || true
  return $rc
}
stamp="$VENV/.egopressdiff-installed"
want="$(cat pyproject.toml; echo "$TORCH_SPEC")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[run.sh] installing into $VENV (torch spec: $TORCH_SPEC) ..." >&2
  # torch first, alone, so that no dependency pulls a different (CUDA) build.
  # shellcheck disable=SC2086
  pipq $TORCH_SPEC
  pipq -e ".[dev]"
  printf '%s' "$want" > "$stamp"
fi

cmd=${1:-demo}
shift || true
case "$cmd" in
  demo) exec "$VENV/bin/egopressdiff" demo "$@" ;;
  test)
    set +e
    "$VENV/bin/python" -m pytest "$@"
    rc=$?
    # pytest exit 5 = no tests collected: that is a failure for us.
    if [ "$rc" -eq 5 ]; then echo "[run.sh] no tests were collected" >&2; exit 1; fi
    exit "$rc" ;;
  *) exec "$VENV/bin/egopressdiff" "$cmd" "$@" ;;
esac
