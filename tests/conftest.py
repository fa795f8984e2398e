"""Shared fixtures: the tiny random test model, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from hero_agents.testing import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random Qwen2 model + BPE tokenizer with a tool-calling chat template."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))
