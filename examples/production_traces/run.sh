#!/usr/bin/env bash
# Production traces → trajectories → hindsight feedback → a distilled policy, no environment.
#
#   examples/production_traces/run.sh                         # sample logs, default model, CPU
#   LOGS=/path/to/exports examples/production_traces/run.sh   # your own logs (folders below)
#   REFLECTOR=openai:gpt-4o-mini MODE=hero OPENAI_API_KEY=... examples/production_traces/run.sh
#
# The offline default reflects with the env-feedback baseline (hints are the raw observations)
# and redacts anyway (--redact) so the hints show the placeholders; a hosted reflector such as
# openai:gpt-4o-mini is redacted by default. MODEL is 'default' (SmolLM2-135M) or a folder.
set -euo pipefail
cd "$(dirname "$0")/../.."

run=${RUN:-runs/production}
logs=${LOGS:-$run/logs}
model=${MODEL:-default}
reflector=${REFLECTOR:-env-feedback}
mode=${MODE:-env-feedback}
steps=${STEPS:-4}
mkdir -p "$run"

if [[ -z "${LOGS:-}" ]]; then
  .venv/bin/python examples/production_traces/make_sample_logs.py "$logs"
fi
# Broken records in the samples are reported and skipped (--allow-problems keeps exit 0).
.venv/bin/hero import langsmith "$logs/langsmith" --out "$run/traces.jsonl" --overwrite \
  --reward feedback_stats.user_score.avg --problems "$run/problems-langsmith.jsonl" --allow-problems
.venv/bin/hero import otel "$logs/otel" --out "$run/traces.jsonl" --append \
  --reward app.resolved --problems "$run/problems-otel.jsonl" --allow-problems
.venv/bin/hero import openai "$logs/openai/*.jsonl" --out "$run/traces.jsonl" --append \
  --reward metadata.feedback --reward-label thumbs_up=1 --reward-label thumbs_down=0 \
  --problems "$run/problems-openai.jsonl" --allow-problems
.venv/bin/hero reflect "$run/traces.jsonl" --reflector "$reflector" --redact \
  --out "$run/diagnosed.jsonl" --overwrite
.venv/bin/hero distill "$run/diagnosed.jsonl" --model "$model" --signal "$mode" \
  --max-steps "$steps" --out "$run/distill" --overwrite
echo "trajectories: $run/traces.jsonl   adapter: $run/distill/adapter   metrics: $run/distill/metrics.json"
