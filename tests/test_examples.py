"""The examples run as written (with the tiny model standing in for the default policy)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from hero_agents.storage import read_trajectories

EXAMPLES = Path(__file__).parent.parent / "examples"


def load_example(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_capture_react_agent(tiny_model_dir: Path, tmp_path: Path) -> None:
    example = load_example("capture_react_agent")
    out = tmp_path / "react.jsonl"
    trajectories = example.main(str(tiny_model_dir), out, ["Where is order W100?"], 8)
    assert len(trajectories) == 1 and trajectories[0].turns
    assert trajectories[0].turns[0].messages[0]["role"] == "system"
    assert trajectories[0].turns[0].tools[0]["function"]["name"] == "order_status"
    assert out.read_text().count("\n") == 1


def test_production_traces_pipeline(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Sample logs → hero import (3 formats) → hero reflect --redact → hero distill."""
    script = EXAMPLES / "production_traces" / "run.sh"
    env = {**os.environ, "RUN": str(tmp_path), "MODEL": str(tiny_model_dir), "STEPS": "1"}
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]

    trajectories = read_trajectories(tmp_path / "traces.jsonl")
    assert len(trajectories) == 16  # 4 LangSmith threads, 4 OTel conversations, 8 OpenAI threads
    assert {t.metadata["format"] for t in trajectories} == {"langsmith", "otel", "openai"}
    problems = [
        line for p in tmp_path.glob("problems-*.jsonl") for line in p.read_text().splitlines()
    ]
    assert len(problems) == 6  # the broken sample records, each named with its file and line
    diagnosed = read_trajectories(tmp_path / "diagnosed.jsonl")
    hints = " ".join(d.hint for t in diagnosed for d in t.diagnoses or [])
    assert "<EMAIL_1>" in hints and "@example.com" not in hints
    metrics = json.loads((tmp_path / "distill" / "metrics.json").read_text())
    assert metrics["input"]["trajectories"] == 16 and metrics["input"]["signal"] == "env-feedback"
