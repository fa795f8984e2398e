"""The in-process policy's batched sampler on a CUDA GPU: 16 episodes in one batch, the prefix
cache, stop tokens and lengths ending rows at different steps, structured outputs."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from hero_agents.adapters.policy.batched_sampler import common_prefix_length
from hero_agents.adapters.policy.transformers_chat import TransformersChatModel
from hero_agents.trajectory import RESPONSE_METADATA_KEY, TokenTrace

pytestmark = pytest.mark.gpu

SYSTEM = SystemMessage("You help users with their orders. " * 8)  # a long shared prefix
QUESTIONS = [f"Where is my order {n}?{' Please hurry.' * (n % 4)}" for n in range(16)]
SCRIPT = "Sure, order 12 is shipped."


def trace_of(message: AIMessage) -> TokenTrace:
    return TokenTrace.model_validate(message.response_metadata[RESPONSE_METADATA_KEY])


def on_gpu(**fields: object) -> Callable[[Path], TransformersChatModel]:
    def load(path: Path) -> TransformersChatModel:
        policy = TransformersChatModel.from_pretrained(path, device="cuda", **fields)
        policy._sampler.gather_s = 1.0  # every caller of a test joins the first batch
        return policy

    return load


def concurrently(calls: list[Callable[[], AIMessage]]) -> list[AIMessage]:
    results: dict[int, AIMessage] = {}

    def run(index: int) -> None:
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[i] for i in range(len(calls))]


def ask(policy: TransformersChatModel, question: str) -> Callable[[], AIMessage]:
    messages: list[BaseMessage] = [SYSTEM, HumanMessage(question)]
    return lambda: policy.invoke(messages)


def test_sixteen_calls_share_a_batch_and_match_one_at_a_time(tiny_model_dir: Path) -> None:
    # fp32 on the GPU: exact enough to compare tokens with sampling one call at a time.
    load = on_gpu(dtype=torch.float32, temperature=0, max_new_tokens=12, max_batch=16)
    alone = load(tiny_model_dir)
    expected = [trace_of(ask(alone, q)()) for q in QUESTIONS]
    batched = load(tiny_model_dir)
    got = [trace_of(m) for m in concurrently([ask(batched, q) for q in QUESTIONS])]

    assert batched.model.device.type == "cuda"
    assert batched._sampler.rows == 16 and batched._sampler.batches == 1
    for one, many in zip(expected, got, strict=True):
        assert many.completion_token_ids == one.completion_token_ids
        assert many.completion_logprobs == pytest.approx(one.completion_logprobs, abs=1e-3)


def test_the_prefix_cache_lives_on_the_gpu(tiny_model_dir: Path) -> None:
    policy = on_gpu(temperature=0, max_new_tokens=1)(tiny_model_dir)
    embedded: list[torch.Tensor] = []
    policy.model.get_input_embeddings().register_forward_hook(
        lambda module, args, output: embedded.append(args[0])
    )
    first = trace_of(ask(policy, QUESTIONS[0])())
    cold = sum(ids.numel() for ids in embedded)
    embedded.clear()
    second = trace_of(ask(policy, QUESTIONS[1])())
    shared = common_prefix_length([first.prompt_token_ids, second.prompt_token_ids])

    assert cold == len(first.prompt_token_ids)
    assert shared > 40
    assert sum(ids.numel() for ids in embedded) == len(second.prompt_token_ids) - shared
    assert {ids.device.type for ids in embedded} == {"cuda"}
    keys, values = next(iter(policy._sampler._prefixes.values()))[0]
    assert keys.device.type == values.device.type == "cuda"
    assert keys.dtype == next(policy.model.parameters()).dtype


def test_stop_tokens_and_lengths_end_rows_of_one_batch(tiny_model_dir: Path) -> None:
    policy = on_gpu(temperature=0, max_new_tokens=64, max_batch=16)(tiny_model_dir)
    tokenizer = policy.tokenizer
    targets = [*tokenizer(SCRIPT, add_special_tokens=False).input_ids, tokenizer.eos_token_id]
    steps = []

    def script(module: torch.nn.Module, args: object, logits: torch.Tensor) -> torch.Tensor:
        boosted = logits.clone()  # (rows, 1, vocab): one decoding step of the whole batch
        boosted[:, -1, targets[min(len(steps), len(targets) - 1)]] += 1e3
        steps.append(logits.shape[0])
        return boosted

    policy.model.lm_head.register_forward_hook(script)
    short = policy.model_copy(update={"max_new_tokens": 3})
    calls = [ask(short if i % 2 else policy, q) for i, q in enumerate(QUESTIONS)]
    messages = concurrently(calls)

    for index, message in enumerate(messages):
        trace = trace_of(message)
        if index % 2:
            assert message.response_metadata["finish_reason"] == "length"
            assert trace.completion_token_ids == targets[:3]
        else:
            assert message.response_metadata["finish_reason"] == "stop"
            assert trace.completion_token_ids == targets
            assert message.content == SCRIPT
    assert steps[:3] == [16, 16, 16] and steps[3] == 8  # finished rows left the batch


def test_structured_output_on_the_gpu(tiny_model_dir: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    policy = on_gpu(
        temperature=1.0,
        seed=0,
        max_new_tokens=32,
        max_batch=16,
        response_format={"type": "json_schema", "json_schema": {"schema": schema}},
    )(tiny_model_dir)
    messages = concurrently([ask(policy, q) for q in QUESTIONS])
    for message in messages:
        assert message.response_metadata["finish_reason"] == "stop"
        assert set(json.loads(str(message.content))) == {"ok"}
