#!/usr/bin/env bash
# The GPU check: device info, the GPU-relevant tests, and timings, in under 8 minutes.
#
#   prepare here (internet):   bash scripts/gpu_wheels.sh      # -> .gpu/ (wheels + ml-latest-small)
#   on the GPU machine:        bash scripts/gpu_check.sh       # from the repo root
#     with the device tool:    run(command="bash scripts/gpu_check.sh", carry=[".gpu"],
#                                  timeout_s=540)
#   CPU dry path (any machine, tiny sizes, ~2-4 minutes on 2 cores):
#     GPU_CHECK_CPU=1 PYTHON=.venv/bin/python JAXREC_DATA_DIR=/path/to/data bash scripts/gpu_check.sh
#
# Steps, each bounded by `timeout` (seconds on a GPU; the CPU dry path allows more):
#   info         JAX version, devices, memory limits                                  30
#   tests        pytest: train step, fit, evaluator, mesh, memory plan (not slow)    90
#   equivalence  tiny mf/bpr over every device vs the same run on the CPU            60
#   scale        mf/bpr epoch at ml-20m's shape (138,493 users x 26,744 items, 20M
#                interactions, data=synthetic) + full ranking of every test user    170
#   sweep        the 16-trial mf grid vectorised vs one trial (scripts/bench_sweep.py) 100
# then a table. $OUT (default: a temporary folder) receives three files: gpu_check.md (the
# table), gpu_check.json (every step's measurements) and gpu_check.log (every step's output).
# GPU_CHECK_STEPS=info,tests,... runs a subset.
# Tests and the equivalence run with JAX_DEFAULT_MATMUL_PRECISION=highest (no TF32), the
# timings with JAX's defaults. Exit status: the number of failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d -t gpu-check-XXXX)}
mkdir -p "$OUT"
WORK=$(mktemp -d -t gpu-check-work-XXXX)  # per-step files; $OUT gets three (the device tool
trap 'rm -rf "$WORK"' EXIT                # brings back at most 8)
STEPS=${GPU_CHECK_STEPS:-info,tests,equivalence,scale,sweep}
CPU=${GPU_CHECK_CPU:-0}

# the carried wheels (no internet there); the CPU dry path uses this machine's packages
# unless GPU_CHECK_WHEELS names the folder
WHEELS=${GPU_CHECK_WHEELS:-$( [ "$CPU" = 1 ] && echo none || echo .gpu/wheels )}
if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu-check-site "$WHEELS"/*.whl || exit 100
  export PYTHONPATH=/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
[ -d .gpu/data/ml-latest-small ] && export JAXREC_DATA_DIR=$ROOT/.gpu/data
export JAXREC_CACHE_DIR=${JAXREC_CACHE_DIR:-/tmp/gpu-check-cache} WANDB_MODE=disabled
export PYTHONUNBUFFERED=1

if [ "$CPU" = 1 ]; then
  export JAX_PLATFORMS=cpu
  T_INFO=60 T_TESTS=120 T_EQ=120 T_SCALE=120 T_SWEEP=240
  TESTS=(tests/unit/test_memory_plan.py)
  SCALE=(--scales 0.0005 --epochs 1 --dim 8 --batch-size 256)
  SWEEP=(trainer.epochs=1)
else
  T_INFO=30 T_TESTS=90 T_EQ=60 T_SCALE=170 T_SWEEP=100
  TESTS=(tests/unit/test_fit.py tests/unit/test_evaluator.py tests/unit/test_mesh.py
         tests/unit/test_memory_plan.py tests/unit/test_losses.py)
  SCALE=(--scales 1 --epochs 2 --dim 32 --batch-size 4096)
  SWEEP=()
fi

: > "$WORK/steps.tsv"
failed=0
step() {  # step NAME SECONDS COMMAND...: run it under timeout, record status and seconds
  local name=$1 limit=$2; shift 2
  case ",$STEPS," in *",$name,"*) ;; *) return 0 ;; esac
  echo "=== $name (at most ${limit} s)"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$WORK/$name.log"
  local status=${PIPESTATUS[0]}
  printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - t0))" >> "$WORK/steps.tsv"
  [ "$status" = 0 ] || { failed=$((failed + 1)); echo "=== $name: exit $status"; }
}

command -v nvidia-smi >/dev/null && [ "$CPU" != 1 ] && nvidia-smi -L
step info "$T_INFO" "$PY" scripts/gpu_check.py info "$WORK"
step tests "$T_TESTS" env JAX_DEFAULT_MATMUL_PRECISION=highest \
  "$PY" -m pytest -n 0 -q -x -m "not slow" -p no:cacheprovider "${TESTS[@]}"
step equivalence "$T_EQ" env JAX_DEFAULT_MATMUL_PRECISION=highest \
  "$PY" scripts/gpu_check.py equivalence "$WORK"
step scale "$T_SCALE" "$PY" scripts/bench_scale.py --devices 1 "${SCALE[@]}" \
  --json "$WORK/scale.json"
step sweep "$T_SWEEP" "$PY" scripts/bench_sweep.py --modes vectorised,single \
  --json "$WORK/sweep.json" "${SWEEP[@]}"
"$PY" scripts/gpu_check.py table "$WORK"
cp "$WORK/gpu_check.md" "$WORK/gpu_check.json" "$OUT/"
for f in "$WORK"/*.log; do echo "=== $(basename "$f")"; cat "$f"; done > "$OUT/gpu_check.log"
echo "gpu check: $failed failed step(s); gpu_check.md, .json and .log in $OUT"
exit "$failed"
