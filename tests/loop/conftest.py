"""Fixtures of the loop tests: configs for the tiny model, an isolated cache, a scripted
reflector server on loopback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "reflection"))
from reflection_server import ScriptedChatServer


@pytest.fixture
def hero_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of this test session's own (warm starts are cached per settings)."""
    cache = tmp_path_factory.getbasetemp() / "hero-cache"
    monkeypatch.setenv("HERO_CACHE", str(cache))
    return cache


def tiny_settings(model_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A small loop on tau2:mock with the tiny random model (it writes garbage, fast)."""
    settings: dict[str, Any] = {
        "env": "tau2:mock",
        "model": str(model_dir),
        "method": "env-feedback",
        "warmup": {"steps": 1},
        "rollout": {"tasks": 2, "group_size": 2, "max_turns": 2, "max_new_tokens": 12},
        "eval": {"tasks": 3, "max_turns": 2},
        "budget": {"iterations": 1},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return settings


@pytest.fixture
def write_config(tmp_path: Path, tiny_model_dir: Path) -> Callable[..., Path]:
    def write(name: str = "tiny.yaml", **overrides: Any) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(tiny_settings(tiny_model_dir, **overrides)))
        return path

    return write


@pytest.fixture
def reflector_server() -> Iterator[ScriptedChatServer]:
    """An OpenAI-compatible server that returns well-formed diagnoses for any episode."""
    server = ScriptedChatServer()
    yield server
    server.close()
