#!/usr/bin/env bash
# One GPU benchmark run, under 10 minutes on one H100/H200 (the steps' time limits add up to
# 560 s):
#   1. training-step throughput, tfmedbench vs PyTorch in the same process, ResNet-50
#      classifier at 224 (batch 128) and U-Net ResNet-50 at 512 (batch 16): tfmedbench float32
#      and mixed_float16, each with XLA off and on; PyTorch float32 and AMP (NCHW and
#      channels-last); GPU utilisation and memory sampled by nvidia-smi during each model;
#   2. the input pipelines allocate nothing on the GPU (benchmarks/placement_check.py);
#   3. the classification input pipeline from the 512 config (and the full-resolution one)
#      with all CPU cores as workers, vs a DataLoader with as many workers: compare with 1.;
#   4. a short VFS paper-protocol run (the recipe as is: 512 px, batch 16, SA-UNet expansion,
#      mixed precision + XLA, the default on GPUs) for EPOCHS epochs on DRIVE_DIR (real DRIVE
#      if given, else generated fundus images), timed per epoch.
# Results go to $OUT (or ./gpu-results): gpu_benchmark.txt (everything), JSON/CSV per case.
#
#   bash benchmarks/gpu.sh                      # uses $PY, default .venv-gpu/bin/python
#   INSTALL=1 bash benchmarks/gpu.sh            # first creates .venv-gpu with the [gpu] extra
#   DRIVE_DIR=/data bash benchmarks/gpu.sh      # folder holding DRIVE/ for step 4
#
# The GPU environment is a separate venv: `tensorflow[and-cuda]` (the [gpu] extra) and the
# CPU-only `tensorflow-cpu` of a development venv must never be installed together, and the
# PyTorch reference needs a CUDA torch (PyPI's torch==2.13.0 Linux wheels are CUDA builds: the
# [convert] extra). Sizes: REPEATS (3), STEPS (10), CLS_BATCH (128), UNET_BATCH (16),
# EPOCHS (2) environment variables. Each step has its own time limit; a failing step is
# reported and the script goes on.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv-gpu/bin/python}
OUT=${OUT:-gpu-results}
REPEATS=${REPEATS:-3}
STEPS=${STEPS:-10}
CLS_BATCH=${CLS_BATCH:-128}
UNET_BATCH=${UNET_BATCH:-16}
EPOCHS=${EPOCHS:-2}
DRIVE_DIR=${DRIVE_DIR:-}
export TF_CPP_MIN_LOG_LEVEL=2 NO_ALBUMENTATIONS_UPDATE=1
mkdir -p "$OUT"
LOG="$OUT/gpu_benchmark.txt"

if [ "${INSTALL:-0}" = 1 ]; then
  python3 -m venv .venv-gpu && .venv-gpu/bin/pip install -q -e ".[gpu,convert,dicom,dev]" \
    || { echo "installing the [gpu] extra failed" | tee -a "$LOG"; exit 3; }
  PY=.venv-gpu/bin/python
fi

{
  echo "# tfmedbench GPU benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
} | tee "$LOG"

"$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import tensorflow as tf, torch
gpus = tf.config.list_physical_devices("GPU")
print("TF", tf.__version__, "GPUs:", gpus, "| torch", torch.__version__, "cuda:", torch.cuda.is_available())
raise SystemExit(0 if gpus and torch.cuda.is_available() else 2)
EOF
if [ "${PIPESTATUS[0]}" != 0 ]; then
  echo "no GPU visible to both TensorFlow and torch: see the header of benchmarks/gpu.sh" | tee -a "$LOG"
  exit 2
fi

step() {  # $1 name, $2 time limit (s), rest: command; output appended to the log
  local name=$1 limit=$2; shift 2
  echo "## $name ($(date -u '+%H:%M:%S'))" | tee -a "$LOG"
  timeout "$limit" "$@" 2>"$OUT/$name.err" | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || echo "$name: exit status $rc (stderr: $OUT/$name.err)" | tee -a "$LOG"
}

train_case() {  # $1 name, rest: train_throughput args; GPU utilisation sampled meanwhile
  local name=$1; shift
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
    > "$OUT/util_$name.csv" &
  local sampler=$!
  step "train_$name" 140 "$PY" benchmarks/train_throughput.py --device gpu --repeats "$REPEATS" \
    --steps "$STEPS" --warmup 3 --json "$OUT/train_$name.json" "$@"
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  awk -F', ' '{u+=$1; if ($2>m) m=$2; n++} END {if (n) printf "GPU utilisation (mean of %d samples, all variants incl. warm-up): %.0f%%; peak memory used %d MiB\n", n, u/n, m}' \
    "$OUT/util_$name.csv" | tee -a "$LOG"
}

VARIANTS=tf-f32,tf-xla,tf-mixed,tf-mixed-xla,torch,torch-amp,torch-amp-cl
train_case classifier --model classifier --batch "$CLS_BATCH" --variants "$VARIANTS"
train_case unet --model unet --batch "$UNET_BATCH" --variants "$VARIANTS"

step placement 50 "$PY" benchmarks/placement_check.py

# Compare with the classifier's img/s above: the goal is a pipeline >= 2x what the step uses.
step pipeline_512 80 "$PY" benchmarks/pipeline_throughput.py cls-configs --n 128 \
  --workers "$(nproc)" --repeats 2 --configs default,512

DRIVE_ARGS=()
if [ -n "$DRIVE_DIR" ]; then
  DRIVE_ARGS=(--manual-dir "$DRIVE_DIR")
else
  "$PY" -c "from datasets_tfds.drive.fake_data import write_tree; write_tree('$OUT/drive_raw', 20, 20)"
  DRIVE_ARGS=(--manual-dir "$OUT/drive_raw")
fi
rm -rf "$OUT/vfs_run" "$OUT/tfds"
step vfs_run 150 "$PY" -m tfmedbench.cli fit --task VFS --epochs "$EPOCHS" --output "$OUT/vfs_run" \
  --data-dir "$OUT/tfds" "${DRIVE_ARGS[@]}"
[ -f "$OUT/vfs_run/history.csv" ] && { echo "VFS history:"; cat "$OUT/vfs_run/history.csv"; } | tee -a "$LOG"
[ -f "$OUT/vfs_run/metrics.json" ] && { echo "VFS metrics:"; cat "$OUT/vfs_run/metrics.json"; echo; } | tee -a "$LOG"
echo "done: $LOG" | tee -a "$LOG"
