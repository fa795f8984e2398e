#!/usr/bin/env bash
# Quick start, command 1: set up .venv, then run the main job on the embedded default:
# hero demo (SmolLM2-135M-Instruct in process on the CPU, tau2-bench's mock domain): warm start,
# held-out evaluation, HERO iterations with the policy reflecting on its own episodes,
# evaluation again, a before/after table and plots in runs/demo/report/.
# Arguments go to hero demo, e.g. scripts/demo.sh --reflector openai:gpt-4o-mini --overwrite
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export LITELLM_LOCAL_MODEL_COST_MAP=True
exec .venv/bin/hero demo "$@"
