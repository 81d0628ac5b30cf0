#!/usr/bin/env bash
# One short GPU session (a few minutes on an H200): install CuPy, run the gpu-marked tests,
# then time the benchmark configs on the GPU next to NumPy on the CPU.
# Paste the two tables into docs/performance.md ("GPU") with the date and `nvidia-smi -L`.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"; mkdir -p "$OUT"
nvidia-smi -L | tee "$OUT/device.txt"
pip install -q -e ".[gpu,test]" 2>&1 | tail -2
python -c "import cupy; print('cupy', cupy.__version__, cupy.cuda.runtime.getDeviceCount(), 'device(s)')" | tee -a "$OUT/device.txt"
timeout 240 python -m pytest -q -m gpu tests/test_gpu.py 2>&1 | tee "$OUT/pytest-gpu.txt"
# GPU first (float32 is what GPUs are for; float64 on an H200 is still fast), then the CPU reference.
timeout 180 python -m ministeer bench --backend cupy --configs c1,c2,c3 --repeats 10 2>&1 | tee "$OUT/bench-cupy.txt"
timeout 300 python -m ministeer bench --backend numpy --configs c3 --repeats 3 --no-torch 2>&1 | tee "$OUT/bench-numpy.txt"
echo "target: cupy >= 20x numpy at c3 (train step); compare the c3 rows of the two files"
