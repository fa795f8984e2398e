#!/usr/bin/env bash
# Quick start, command 1: set up .venv, then run the main job on the embedded default
# (SmolLM2-135M-Instruct in-process on the CPU, tau2-bench's mock domain).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export LITELLM_LOCAL_MODEL_COST_MAP=True
out=runs/demo
mkdir -p "$out"
.venv/bin/hero rollout --env tau2:mock --policy default --episodes 3 \
  --out "$out/traces.jsonl" --overwrite
