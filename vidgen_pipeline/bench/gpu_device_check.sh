#!/usr/bin/env bash
# The GPU section of the bench on one H200, in one go: full-size random-weight Wan 2.1 T2V
# 1.3B and LTX-Video under the recipes default, low_memory, cache and fast (a 420 s budget;
# recipes that would end past it are skipped with the reason; the process is stopped at
# 460 s, and what it measured by then is already written).
#
# For a session lent the `device` tool. The device machine has python3 with a CUDA torch,
# transformers, numpy, Pillow, OpenCV and safetensors, but not diffusers, pydantic or
# imageio-ffmpeg (which this package imports), nor Dagster (which the bench does not), and no
# network. Once, here, in the repository root, fetch those as wheels into .whl/ (about 9 MB;
# imageio-ffmpeg built without its 68 MB ffmpeg binary, which the bench never runs):
#
#   bash vidgen_pipeline/bench/gpu_device_check.sh --prepare
#
# Then one call, leaving a rerun in the 15 minutes of device time (start ~1-2 min, this <8):
#
#   run(command="bash vidgen_pipeline/bench/gpu_device_check.sh", carry=[".whl"], timeout_s=500)
#
# (the tool sends the checkout its session started in: run it where this script is committed).
# A rerun of what was skipped fits in what is left, e.g.
#   run(command="BENCH_TIMEOUT_S=170 bash vidgen_pipeline/bench/gpu_device_check.sh
#       --models ltx-video --budget 140", carry=[".whl"], timeout_s=200)
# Extra arguments go to the bench (its `--budget` replaces this script's).
#
# Then, here, take the GPU section from what came back into docs/benchmarks.md:
#
#   .venv/bin/python -m vidgen_pipeline.bench --section gpu \
#       --copy-from <files_at>/benchmarks.md --out docs/benchmarks.md
#
# gpu.json, gpu.log, versions.txt and nvidia-smi.txt come back beside it. On a CPU, with
# PYTHON=.venv/bin/python and `--tiny`, the same script checks itself (the tests do).
set -uo pipefail
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
WHEEL_DIR="${WHEEL_DIR:-.whl}"  # another folder (and PY_VERSION) only to check this script here
WHEELS=(diffusers==0.42.1 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0
    typing-inspection==0.4.5 typing-extensions==4.16.0 "importlib_metadata<9")

if [[ "${1:-}" == "--prepare" ]]; then
    PY="${PYTHON:-.venv/bin/python}"
    exclude="$(git rev-parse --git-path info/exclude)"
    grep -qx '/.whl/' "$exclude" 2>/dev/null || echo /.whl/ >>"$exclude"
    rm -rf "$WHEEL_DIR" && mkdir -p "$WHEEL_DIR"
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version "${PY_VERSION:-3.12}" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$WHEEL_DIR" "${WHEELS[@]}" || exit 2
    "$PY" -m pip wheel -q --disable-pip-version-check --no-deps --no-binary imageio-ffmpeg \
        -w "$WHEEL_DIR" imageio-ffmpeg==0.8.1 || exit 2
    ls -l "$WHEEL_DIR"
    exit 0
fi

OUT="${OUT:-/tmp/vidgen-bench-out}"
SITE="${SITE:-/tmp/vidgen-site}"
mkdir -p "$OUT"
if compgen -G "$WHEEL_DIR/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$WHEEL_DIR"/*.whl || exit 2
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this repository, not installed there
export VIDGEN_HOME="${VIDGEN_HOME:-/tmp/vidgen-home}"
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-/tmp/vidgen-inductor}"

"$PY" -c "import diffusers, pydantic, imageio_ffmpeg, cv2" || {
    echo "missing packages: run this script with --prepare here and carry .whl (see its header)" >&2
    exit 2
}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv \
    >"$OUT/nvidia-smi.txt" 2>&1 || true
"$PY" -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none')" 2>&1 | tee "$OUT/versions.txt"

cp docs/benchmarks.md "$OUT/benchmarks.md" 2>/dev/null || true
timeout "${BENCH_TIMEOUT_S:-460}" "$PY" -m vidgen_pipeline.bench --section gpu --budget 420 \
    --out "$OUT/benchmarks.md" --json "$OUT/gpu.json" "$@" 2>&1 | tee "$OUT/gpu.log"
status=${PIPESTATUS[0]}
echo "bench exit status $status"
exit "$status"
