#!/usr/bin/env bash
# Check the import layers of pyproject.toml's [tool.importlinter] contracts with import-linter.
# The installed package maps adapters/ and graphs/ into hero_agents (package-dir), which
# import-linter cannot follow in a source tree: it checks a copy laid out as installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mirror=$(mktemp -d)
trap 'rm -rf "$mirror"' EXIT
cp -r "$root/hero_agents" "$mirror/hero_agents"
cp -r "$root/adapters" "$mirror/hero_agents/adapters"
cp -r "$root/graphs" "$mirror/hero_agents/graphs"
cd "$mirror"
PYTHONPATH="$mirror" "$root/.venv/bin/lint-imports" "$root/pyproject.toml" --no-cache
