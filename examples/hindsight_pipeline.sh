#!/usr/bin/env bash
# Roll out, reflect in hindsight, distill: the HERO pipeline on tau2-bench's mock domain.
#
#   REFLECTOR=openai:gpt-4o-mini OPENAI_API_KEY=... examples/hindsight_pipeline.sh
#   REFLECTOR=openai-compatible:http://127.0.0.1:8001/v1#Qwen2.5-7B-Instruct examples/hindsight_pipeline.sh
#   REFLECTOR=env-feedback MODE=env-feedback examples/hindsight_pipeline.sh   # the baseline, offline
#
# POLICY is 'default' (SmolLM2-135M in process), a model folder, or vllm:URL for a served policy.
set -euo pipefail
cd "$(dirname "$0")/.."

policy=${POLICY:-default}
reflector=${REFLECTOR:?set REFLECTOR, e.g. openai:gpt-4o-mini or env-feedback}
mode=${MODE:-hero}
episodes=${EPISODES:-16}
run=${RUN:-runs/pipeline}
mkdir -p "$run"

.venv/bin/hero rollout --env tau2:mock --policy "$policy" --episodes "$episodes" \
  --out "$run/traces.jsonl" --overwrite
.venv/bin/hero reflect "$run/traces.jsonl" --reflector "$reflector" \
  --out "$run/diagnosed.jsonl" --overwrite
.venv/bin/hero distill "$run/diagnosed.jsonl" --model "$policy" --signal "$mode" \
  --out "$run/distill" --overwrite
echo "adapter: $run/distill/adapter   metrics: $run/distill/metrics.json"
