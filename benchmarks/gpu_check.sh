#!/usr/bin/env bash
# The GPU path, checked end to end on one NVIDIA H100 or H200 after the README's set-up
# (scripts/setup.sh, with a CUDA build of torch; tau2 and the default model installed). Sized
# for under 8 minutes (not yet timed on a GPU). It runs, each step's output in OUT/NAME.log:
#   gpu-tests  pytest -m gpu (the batched sampler, a bf16 LoRA step, a loop iteration, sync)
#   train      hero train of the default model on tau2:mock, backend in-process, 2 iterations,
#              with hero demo's settings (whose CPU figures the README gives)
#   sampler    benchmarks/inprocess_batching.py: 16 episodes, 1 vs 16 in flight, on the GPU
#   lora-step  benchmarks/distill_lora_step.py on the GPU, FLOP rate vs the bf16 peak
# then prints one summary table (benchmarks/gpu_check_summary.py) against the targets: a loop
# iteration >= 10x faster than on 2 CPU cores, 16 episodes in flight >= 8x the tokens/s of one.
# Exit status: 0 all passed, 1 a step failed, 2 every step ran but a target was missed.
#
#   benchmarks/gpu_check.sh [OUT]      OUT: a new folder (default runs/gpu-check-DATE-TIME)
set -uo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-.venv/bin/python}
out=${1:-runs/gpu-check-$(date +%Y%m%d-%H%M%S)}
if [ -e "$out" ]; then
  echo "gpu_check: $out already exists; name a new folder (nothing is overwritten)" >&2
  exit 1
fi
export LITELLM_LOCAL_MODEL_COST_MAP=True  # no network fetch when litellm (tau2) is imported

if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: $python's torch sees no CUDA GPU (install a CUDA build of torch)" >&2
  exit 1
fi
mkdir -p "$out"
"$python" - <<'PY'
import platform, torch
print(f"GPU check: {torch.cuda.get_device_name()}, torch {torch.__version__} "
      f"(CUDA {torch.version.cuda}), Python {platform.python_version()}")
PY

# step NAME LIMIT_S COMMAND...: run it, log its output, record "NAME RC SECONDS" in steps.txt.
step() {
  local name=$1 limit=$2 started code
  shift 2
  echo "== $name: $*"
  started=$(date +%s)
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  code=$?
  echo "$name $code $(($(date +%s) - started))" >>"$out/steps.txt"
  if [ "$code" -ne 0 ]; then
    echo "   failed (rc $code); the end of $out/$name.log:"
    tail -n 15 "$out/$name.log" | sed 's/^/   /'
  fi
}

step gpu-tests 240 "$python" -m pytest -m gpu -q -rs -p no:cacheprovider

cat >"$out/train.yaml" <<'YAML'
# hero demo's settings (hero_agents/cli/demo.py), in process; the README gives their CPU figures.
env: tau2:mock
model: default
backend: in-process
device: cuda
method: hero
reflector: self
warmup: {steps: 3, batch_size: 4}
rollout: {tasks: 4, group_size: 4, max_turns: 4, max_new_tokens: 64, concurrency: 8}
train: {batch_size: 4}
eval: {every: 2, max_turns: 4, tasks: 24}
budget: {iterations: 2}
YAML
step train 300 "$python" -m hero_agents train "$out/train.yaml" --out "$out/train"

step sampler 180 "$python" benchmarks/inprocess_batching.py --model default --device cuda \
  --episodes 16 --n 16 --json "$out/sampler.json"

step lora-step 180 "$python" benchmarks/distill_lora_step.py --model default --device cuda \
  --steps 3 --json "$out/lora-step.json"

echo
"$python" benchmarks/gpu_check_summary.py "$out"
