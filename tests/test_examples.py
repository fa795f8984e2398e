"""The examples run as written (with the tiny model standing in for the default policy)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
