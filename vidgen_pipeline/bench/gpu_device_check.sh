#!/usr/bin/env bash
# The GPU section of the bench on one H200, in one go: full-size random-weight SVD-XT under
# the recipes brief, default, fast and low_memory (about 5-8 minutes with warm-ups).
#
# For a session lent the `device` tool. The device machine has python3 with a CUDA torch,
# transformers and accelerate, but neither diffusers nor this repo's other dependencies, and
# no network. Once, here, in the repository root, fetch the wheels it lacks (they travel with
# `carry`):
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl \
#       diffusers==0.42.1 importlib_metadata
#
# Then, one call (leave room under the 600 s limit for the machine's start):
#
#   run(command="bash vidgen_pipeline/bench/gpu_device_check.sh", carry=[".whl"], timeout_s=600)
#
# and, here, take the GPU section from what came back into docs/benchmarks.md:
#
#   .venv/bin/python -m vidgen_pipeline.bench --section gpu \
#       --copy-from <files_at>/benchmarks.md --out docs/benchmarks.md
#
# The JSON (gpu.json), the log (gpu.log) and nvidia-smi's view come back beside it. Extra
# arguments go to the bench, e.g. `--recipes default,fast,fast_autotune --steps 3`.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/vidgen-bench-out}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"

if ! "$PY" -c "import diffusers" 2>/dev/null; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/vidgen-site .whl/*.whl || exit 2
        export PYTHONPATH="/tmp/vidgen-site${PYTHONPATH:+:$PYTHONPATH}"
    else
        echo "diffusers is not installed and no .whl/ wheels were carried: see this script's header" >&2
        exit 2
    fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this repository, not installed there
export VIDGEN_HOME="${VIDGEN_HOME:-/tmp/vidgen-home}"
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-/tmp/vidgen-inductor}"

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
    >"$OUT/nvidia-smi.txt" 2>&1 || true
"$PY" -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'gpu', torch.cuda.get_device_name(0))" 2>&1 | tee "$OUT/versions.txt"

cp docs/benchmarks.md "$OUT/benchmarks.md" 2>/dev/null || true
# 8 minutes for the section: recipes that would start after --budget seconds are skipped,
# and whatever was measured is already in $OUT if the timeout stops it.
timeout 540 "$PY" -m vidgen_pipeline.bench --section gpu --budget 400 \
    --out "$OUT/benchmarks.md" --json "$OUT/gpu.json" "$@" 2>&1 | tee "$OUT/gpu.log"
status=${PIPESTATUS[0]}
echo "bench exit status $status"
exit "$status"
