#!/usr/bin/env bash
# One prepared command for an accelerator machine (one CUDA GPU, Python with torch, numpy,
# opencv-python-headless, scikit-image, click and tqdm installed, nothing downloadable):
#
#     bash benchmarks/gpu_check.sh            (from a checkout; PYTHON=... to pick the interpreter)
#
# 1. ends at once, with one line and status 1, where no CUDA device is visible;
# 2. installs the package with --no-deps (falls back on PYTHONPATH where pip cannot build);
# 3. runs the CUDA tests, tests/test_cuda.py, without pytest (it may be absent there);
# 4. prints the GPU table (benchmarks/gpu_table.py): the bf16 matmul peak, EmoNet and RBDM
#    alone at bf16 in batches of 256, the whole process on one video and on several inputs,
#    the feed alone for 1 and N inputs in flight, peak GPU memory.
# Sized to finish in under 8 minutes on an H200 with 16 cores (each step has a time limit).
set -uo pipefail

PYTHON=${PYTHON:-python3}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1

# Devices hidden, or no NVIDIA driver's device node: said before torch's import (seconds).
if { [ -n "${CUDA_VISIBLE_DEVICES+set}" ] && [ -z "$CUDA_VISIBLE_DEVICES" ]; } \
    || [ ! -e /dev/nvidiactl ] \
    || ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
    >/dev/null 2>&1; then
    echo "gpu_check: no CUDA device visible to $PYTHON (hidden, no NVIDIA driver, or torch sees none): nothing run"
    exit 1
fi

started=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - started )) s)"; }

step "install with --no-deps"
if ! "$PYTHON" -m pip install --quiet --no-deps --no-build-isolation --no-index -e . ; then
    echo "pip could not install the checkout: running it from $REPO through PYTHONPATH"
fi
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c 'import emonet_cli, torch; print("emonet-cli", emonet_cli.__version__, "torch", torch.__version__, torch.cuda.get_device_name(0))' || exit 1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/emonet-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

step "CUDA tests (tests/test_cuda.py, without pytest)"
timeout 180 "$PYTHON" tests/test_cuda.py
tests_status=$?

step "GPU table"
timeout 330 "$PYTHON" benchmarks/gpu_table.py --workdir "$WORK"
table_status=$?

step "done"
echo "CUDA tests: $([ $tests_status -eq 0 ] && echo passed || echo "FAILED (status $tests_status)");" \
     "GPU table: $([ $table_status -eq 0 ] && echo printed || echo "FAILED (status $table_status)")"
[ $tests_status -eq 0 ] && [ $table_status -eq 0 ]
