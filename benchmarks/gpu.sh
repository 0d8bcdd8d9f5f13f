#!/usr/bin/env bash
# One short GPU benchmark run (< 10 minutes on one H100/H200): training throughput of tfmedbench
# (float32; mixed_float16 + XLA) vs the PyTorch reference (float32; AMP), ResNet-50 classifier
# 224 (batch 128) and U-Net ResNet-50 512 (batch 16), GPU utilisation sampled by nvidia-smi
# during each, then the input pipeline's rate on this machine's CPUs (to compare with the
# training step's consumption). Results go to $OUT (or ./gpu-results) as text + CSV.
#
#   PY=/path/to/gpu-venv/bin/python bash benchmarks/gpu.sh
#
# Needs a Python with a CUDA build of TensorFlow (tensorflow[and-cuda] 2.21) and of torch 2.13
# (the repo's .venv is CPU-only: tensorflow-cpu, torch+cpu). The script stops with a message if
# either framework does not see a GPU. This workplace's lent device machines (2026-11) hold
# torch but no TensorFlow and cannot download; TensorFlow's wheel (546 MiB) is far over what a
# call can carry (64 MiB), so run this where both frameworks are installed. Sizes: REPEATS (3), STEPS (10), CLS_BATCH (128),
# UNET_BATCH (16) environment variables.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-gpu-results}
REPEATS=${REPEATS:-3}
STEPS=${STEPS:-10}
CLS_BATCH=${CLS_BATCH:-128}
UNET_BATCH=${UNET_BATCH:-16}
export TF_CPP_MIN_LOG_LEVEL=2 NO_ALBUMENTATIONS_UPDATE=1
mkdir -p "$OUT"
LOG="$OUT/gpu_benchmark.txt"

{
  echo "# tfmedbench GPU benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
} | tee "$LOG"

"$PY" - <<'EOF' || { echo "no GPU visible to TensorFlow and torch: see the header of benchmarks/gpu.sh" | tee -a "$LOG"; exit 2; }
import tensorflow as tf, torch
gpus = tf.config.list_physical_devices("GPU")
print("TF", tf.__version__, "GPUs:", gpus, "| torch", torch.__version__, "cuda:", torch.cuda.is_available())
assert gpus and torch.cuda.is_available()
EOF

sample_util() {  # $1: csv file; runs until killed
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 > "$1"
}

run_case() {  # $1 name, rest: train_throughput args
  local name=$1; shift
  sample_util "$OUT/util_$name.csv" &
  local pid=$!
  timeout 240 "$PY" benchmarks/train_throughput.py --device gpu --repeats "$REPEATS" \
    --steps "$STEPS" --warmup 3 --json "$OUT/train_$name.json" "$@" 2>"$OUT/train_$name.err" \
    | tee -a "$LOG"
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  awk -F', ' '{u+=$1; if ($2>m) m=$2; n++} END {if (n) printf "GPU utilisation (mean of %d samples, all variants incl. warm-up): %.0f%%; peak memory used %d MiB\n", n, u/n, m}' \
    "$OUT/util_$name.csv" | tee -a "$LOG"
}

run_case classifier --model classifier --batch "$CLS_BATCH" \
  --variants tf-mixed-xla,tf-f32,torch-amp-cl,torch-amp,torch
run_case unet --model unet --batch "$UNET_BATCH" \
  --variants tf-mixed-xla,tf-f32,torch-amp-cl,torch-amp,torch

# The input pipeline on this machine's CPUs (TXC recipe, 1024 px PNGs), all cores as workers:
# compare with the classifier's images/s above (goal: pipeline >= 2x training consumption).
timeout 150 "$PY" benchmarks/pipeline_throughput.py cls --n 96 --workers "$(nproc)" --repeats 2 \
  2>"$OUT/pipeline.err" | tee -a "$LOG"
echo "done: $LOG" | tee -a "$LOG"
