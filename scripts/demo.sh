#!/usr/bin/env bash
# Quick start, command 1: set up .venv, then run the main job on the embedded default:
# hero demo (SmolLM2-135M-Instruct in process on the CPU, tau2-bench's mock domain): warm start,
# held-out evaluation, HERO iterations whose notes come from the benchmark's reference solution
# (privileged: the best reflector offline, and the demo says so), evaluation again, a
# before/after table with intervals, and plots in runs/demo/report/.
# Arguments go to hero demo, e.g. scripts/demo.sh --reflector grounded+openai:gpt-4o-mini
# --overwrite (a model reflector, as your own agent needs; key in $OPENAI_API_KEY).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export LITELLM_LOCAL_MODEL_COST_MAP=True
exec .venv/bin/hero demo "$@"
