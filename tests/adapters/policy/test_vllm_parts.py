"""The vLLM serving pieces that need no server: specs, version leases, tool-call parsing,
the launch command. The real-server behaviour is in test_vllm_serving.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hero_agents.adapters.policy.server_group import group_members
from hero_agents.adapters.policy.vllm_chat import (
    VLLMChatModel,
    _newest_version,
    _parse_server_tool_calls,
    _tool_choice,
)
from hero_agents.adapters.policy.vllm_server import PolicyServer, data_parallel_size
from hero_agents.adapters.policy.weight_sync import (
    PolicyVersions,
    WeightSync,
    version_name,
    version_number,
)
from hero_agents.errors import ConfigError, PolicyError


def test_spec_pins_a_version_or_follows_the_newest():
    pinned = VLLMChatModel.from_spec("vllm:http://127.0.0.1:8000/v1#policy-v3")
    assert (pinned.base_url, pinned.model) == ("http://127.0.0.1:8000/v1", "policy-v3")
    following = VLLMChatModel.from_spec("vllm:http://127.0.0.1:8000/v1/", max_tokens=9)
    assert (following.base_url, following.model, following.max_tokens) == (
        "http://127.0.0.1:8000/v1",
        None,
        9,
    )
    assert following.server_root == "http://127.0.0.1:8000"
    with pytest.raises(ConfigError, match="not a vLLM policy spec"):
        VLLMChatModel.from_spec("openai:http://127.0.0.1:8000/v1")


def test_registry_loads_vllm_specs_with_shared_sampling_options():
    from hero_agents.adapters.policy import load_policy

    policy = load_policy("vllm:http://127.0.0.1:8000/v1#policy-v2", max_new_tokens=64, seed=None)
    assert isinstance(policy, VLLMChatModel)
    assert (policy.model, policy.max_tokens) == ("policy-v2", 64)
    with pytest.raises(ConfigError, match="policy_version"):
        load_policy("vllm:http://127.0.0.1:8000/v1", policy_version="x")


def test_unknown_generation_option_is_an_error():
    client = VLLMChatModel(base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="frequency_penalty"):
        client._request([], None, {"frequency_penalty": 1.0})


def test_newest_version_is_the_highest_number_not_the_last_listed():
    cards = [{"id": "policy-v0"}, {"id": "policy-v10"}, {"id": "policy-v9"}]
    assert _newest_version(cards) == "policy-v10"
    assert _newest_version([{"id": "Qwen2.5-0.5B"}]) == "Qwen2.5-0.5B"
    assert version_number(version_name(12)) == 12
    assert version_number("policy-v1-old") is None


def test_leased_versions_are_never_idle():
    versions = PolicyVersions("policy-v0")
    versions.switch("policy-v1")
    with versions.lease() as held:
        assert held == "policy-v1"
        versions.switch("policy-v2")
        assert versions.in_flight("policy-v1") == 1
        assert versions.idle(keep=["policy-v0"]) == []
    assert versions.in_flight("policy-v1") == 0
    assert versions.idle(keep=["policy-v0"]) == ["policy-v1"]
    versions.forget("policy-v1")
    assert versions.loaded == ["policy-v0", "policy-v2"]


def test_server_tool_calls_split_into_valid_and_invalid():
    raw = [
        {"id": "a", "function": {"name": "add", "arguments": '{"a": 1}'}},
        {"id": "b", "function": {"name": "add", "arguments": '{"a": 1'}},
        {"id": "c", "function": {"name": "add", "arguments": "true"}},
        {"id": "d", "function": {"name": "ping", "arguments": ""}},
    ]
    calls, invalid = _parse_server_tool_calls(raw)
    assert [(c["id"], c["name"], c["args"]) for c in calls] == [
        ("a", "add", {"a": 1}),
        ("d", "ping", {}),
    ]
    assert [(i["id"], i["args"]) for i in invalid] == [("b", '{"a": 1'), ("c", "true")]
    assert all(i["error"] for i in invalid)


def test_tool_choice_forms():
    tools = [{"type": "function", "function": {"name": "add", "parameters": {}}}]
    assert _tool_choice("any", tools) == "required"
    assert _tool_choice("add", tools) == {"type": "function", "function": {"name": "add"}}
    with pytest.raises(ConfigError, match="not one of the bound tools"):
        _tool_choice("mul", tools)


def test_launch_command_and_environment(tiny_model_dir: Path, tmp_path: Path):
    server = PolicyServer(tiny_model_dir, run_dir=tmp_path, port=18555, max_lora_rank=8)
    server._on_gpu = False
    server.set_startup_adapter("policy-v4", tmp_path / "a")
    command = server.command()
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    for flag in ("--enable-lora", "--enable-auto-tool-choice", "--enforce-eager"):
        assert flag in command
    assert command[command.index("--max-lora-rank") + 1] == "8"
    assert command[command.index("--tool-call-parser") + 1] == "hermes"
    adapter = json.loads(command[command.index("--lora-modules") + 1])
    assert adapter == {"name": "policy-v4", "path": str(tmp_path / "a")}
    env = server.environment()
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")
    assert server.base_url == "http://127.0.0.1:18555/v1"


@pytest.mark.parametrize(
    ("args", "size"),
    [
        ((), 1),
        (("--data-parallel-size", "2"), 2),
        (("-dp", "4"), 4),
        (("--data-parallel-size=3",), 3),
        (("--data_parallel_size", "2"), 2),
        (("-dp=8", "--tensor-parallel-size", "2"), 8),
        (("--data-parallel-size", "1", "--tensor-parallel-size", "4"), 1),
        (("--data-parallel-size-local", "2"), 1),
        (("--data-parallel-size",), 1),
    ],
)
def test_data_parallel_size_of_vllm_arguments(args: tuple[str, ...], size: int):
    assert data_parallel_size(args) == size


def test_server_refuses_data_parallelism_with_lora_sync(tiny_model_dir: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match=r"data parallelism \(2 replicas") as info:
        PolicyServer(tiny_model_dir, run_dir=tmp_path, extra_args=("-dp", "2"))
    assert "reaches one replica only" in str(info.value) and "\n" not in str(info.value)
    server = PolicyServer(tiny_model_dir, run_dir=tmp_path, extra_args=("-tp", "2", "-dp", "1"))
    assert server.command()[-4:] == ["-tp", "2", "-dp", "1"]
    assert not tmp_path.joinpath("vllm-server.log").exists()  # nothing was started


def test_server_needs_a_model_folder(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"no config\.json"):
        PolicyServer(tmp_path, run_dir=tmp_path)


def test_push_needs_a_peft_model(tiny_model_dir: Path, tmp_path: Path):
    from transformers import AutoModelForCausalLM

    sync = WeightSync("http://127.0.0.1:9", adapter_root=tmp_path)
    with pytest.raises(PolicyError, match=r"peft\.PeftModel"):
        sync.push(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    assert list(tmp_path.iterdir()) == []


def test_group_members_sees_this_process_group():
    assert os.getpid() in group_members(os.getpgrp())
