"""Shared fixtures: the tiny random test model, built once per test session, and (for slow
tests) the default model's tokenizer; and the `gpu` marker: tests marked `gpu` are skipped,
with the reason, where torch sees no CUDA GPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hero_agents.adapters.policy.testing import build_tiny_model


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; torch sees none")
    for item in gpu_tests:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny random Qwen2 model + BPE tokenizer with a tool-calling chat template."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def smollm2_tokenizer() -> Any:
    """SmolLM2-135M-Instruct's tokenizer (the default model, converted on first use)."""
    from transformers import AutoTokenizer

    from hero_agents.adapters.policy.default_model import default_model_path

    return AutoTokenizer.from_pretrained(default_model_path())
