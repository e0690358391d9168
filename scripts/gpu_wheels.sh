#!/usr/bin/env bash
# Prepare .gpu/ (git-ignored) for scripts/gpu_check.sh on a GPU machine without internet:
#   .gpu/wheels/  py3.12 manylinux wheels of what jaxrec needs and that machine lacks:
#                 hydra-core, omegaconf, antlr4-python3-runtime (an sdist: built here);
#                 with --extras also wandb and dp-accounting and those of their dependencies
#                 that machine lacks (not needed by gpu_check.sh: W&B off, no private runs)
#   .gpu/data/ml-latest-small/  copied from $JAXREC_DATA_DIR (the sweep step trains on it)
#
#   bash scripts/gpu_wheels.sh [--extras]            # here, with PyPI reachable
#   then: run(command="bash scripts/gpu_check.sh", carry=[".gpu"], timeout_s=540)
#
# Versions are those of this machine's environment ($PYTHON, default .venv/bin/python or
# python3), so the GPU run matches the tests here. The device holds jax, flax, optax,
# orbax, numpy, scipy, pandas, pyarrow, pyyaml, tqdm, pytest (DEVICE_HAS below): not
# carried. Everything travels with the working tree, 64 MiB at most: the core set is
# ~0.5 MiB plus 3 MiB of data; --extras adds ~25 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DEST=.gpu/wheels
EXTRAS=0
[ "${1:-}" = "--extras" ] && EXTRAS=1
# python3.12 manylinux x86-64, as that machine's Python needs
PLATFORM=(--only-binary=:all: --python-version 3.12 --implementation cp
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
          --platform manylinux1_x86_64 --platform manylinux_2_34_x86_64
          --platform manylinux_2_31_x86_64 --platform manylinux_2_24_x86_64)
# packages the GPU machine already has (the device's list); never carried over them
DEVICE_HAS=" absl-py attrs certifi charset-normalizer click filelock fsspec grpcio idna
 jax jaxlib numpy packaging pandas protobuf psutil pyarrow pydantic-settings pygments
 python-dateutil pyyaml requests rich scipy setuptools six typing-extensions urllib3 wrapt
 xxhash mpmath tqdm pytest pluggy iniconfig msgpack etils zipp anyio h11 httpcore httpx "

version() {  # the installed version of $1 here, or nothing
  "$PY" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true
}
pin() { local v; v=$(version "$1"); [ -n "$v" ] && echo "$1==$v" || echo "$1"; }

rm -rf "$DEST" && mkdir -p "$DEST"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
# antlr4-python3-runtime 4.9.x is published as an sdist only: build its (pure) wheel
"$PY" -m pip wheel -q --no-deps --no-cache-dir -w "$DEST" "$(pin antlr4-python3-runtime)"
"$PY" -m pip download -q --no-deps "${PLATFORM[@]}" -d "$DEST" \
  "$(pin hydra-core)" "$(pin omegaconf)"
if [ "$EXTRAS" = 1 ]; then
  "$PY" -m pip download -q "${PLATFORM[@]}" --find-links "$DEST" -d "$stage" \
    "$(pin wandb)" "$(pin dp-accounting)"
  for whl in "$stage"/*.whl; do
    name=$(basename "$whl" | cut -d- -f1 | tr '_A-Z' '-a-z')
    case " $(echo $DEVICE_HAS) " in *" $name "*) ;; *) cp -n "$whl" "$DEST/" ;; esac
  done
fi
if [ -n "${JAXREC_DATA_DIR:-}" ] && [ -d "$JAXREC_DATA_DIR/ml-latest-small" ]; then
  mkdir -p .gpu/data && rm -rf .gpu/data/ml-latest-small
  cp -r "$JAXREC_DATA_DIR/ml-latest-small" .gpu/data/
else
  echo "note: JAXREC_DATA_DIR/ml-latest-small not found: the sweep step will fail there" >&2
fi
ls -1 "$DEST"
du -sh .gpu
