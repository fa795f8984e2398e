"""Batched sampling on the tiny model: same tokens as one at a time, shared prefixes computed
once, weights updated between batches with the version recorded."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from hero_agents.adapters.policy.batched_sampler import common_prefix_length
from hero_agents.adapters.policy.transformers_chat import TransformersChatModel
from hero_agents.errors import PolicyError
from hero_agents.trajectory import RESPONSE_METADATA_KEY, TokenTrace

SYSTEM = SystemMessage("You help users with their orders. " * 8)  # a long shared prefix
QUESTIONS = [
    "Where is my order 12?",
    "Cancel order 7 please, it was a mistake and I do not want it any more.",
    "Hi",
    "What is the weather in Paris today?",
]


def trace_of(message: AIMessage) -> TokenTrace:
    return TokenTrace.model_validate(message.response_metadata[RESPONSE_METADATA_KEY])


def greedy(path: Path, **fields: object) -> TransformersChatModel:
    """On the CPU, where the references of these tests are computed."""
    return TransformersChatModel.from_pretrained(
        path, device="cpu", **{"temperature": 0, "max_new_tokens": 12, **fields}
    )


def concurrently(policy: TransformersChatModel, questions: list[str]) -> list[TokenTrace]:
    results: dict[int, TokenTrace] = {}

    def ask(index: int) -> None:
        results[index] = trace_of(policy.invoke([SYSTEM, HumanMessage(questions[index])]))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [results[i] for i in range(len(questions))]


class TokenCounter:
    """Counts the tokens the model embeds (prefilled or decoded)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.tokens = 0
        self.handle = model.get_input_embeddings().register_forward_hook(self)

    def __call__(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.tokens += args[0].numel()


def test_common_prefix_length() -> None:
    assert common_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_length([[5], [6]]) == 0
    assert common_prefix_length([[1, 2]]) == 2


def test_concurrent_calls_are_batched_and_match_one_at_a_time(tiny_model_dir: Path) -> None:
    alone = greedy(tiny_model_dir)
    expected = [trace_of(alone.invoke([SYSTEM, HumanMessage(q)])) for q in QUESTIONS]

    batched = greedy(tiny_model_dir, max_batch=8)
    batched._sampler.gather_s = 0.5  # every caller joins the first batch
    got = concurrently(batched, QUESTIONS)

    assert batched._sampler.batches < len(QUESTIONS)
    for one, many in zip(expected, got, strict=True):
        assert many.completion_token_ids == one.completion_token_ids
        assert many.completion_logprobs == pytest.approx(one.completion_logprobs, abs=1e-4)


def test_a_shared_prefix_is_prefilled_once(tiny_model_dir: Path) -> None:
    policy = greedy(tiny_model_dir, max_new_tokens=1)
    counter = TokenCounter(policy.model)
    first = trace_of(policy.invoke([SYSTEM, HumanMessage(QUESTIONS[0])]))
    cold = counter.tokens
    counter.tokens = 0
    second = trace_of(policy.invoke([SYSTEM, HumanMessage(QUESTIONS[1])]))
    shared = common_prefix_length([first.prompt_token_ids, second.prompt_token_ids])

    assert cold == len(first.prompt_token_ids)  # prefix + rest, one decoded token needs no input
    assert shared > 40
    assert counter.tokens == len(second.prompt_token_ids) - shared


def test_logprobs_stay_raw_in_a_batch_with_mixed_sampling(tiny_model_dir: Path) -> None:
    policy = TransformersChatModel.from_pretrained(
        tiny_model_dir, device="cpu", temperature=0.7, top_k=5, max_new_tokens=6, seed=3
    )
    policy._sampler.gather_s = 0.5
    traces = concurrently(policy, QUESTIONS[:3])
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    for trace in traces:
        ids = torch.tensor([trace.prompt_token_ids + trace.completion_token_ids])
        with torch.no_grad():
            logits = reference(input_ids=ids).logits[0, len(trace.prompt_token_ids) - 1 : -1]
        rescored = logits.log_softmax(-1).gather(1, ids[0, len(trace.prompt_token_ids) :, None])
        assert trace.completion_logprobs == pytest.approx(rescored[:, 0].tolist(), abs=1e-4)


def save_adapter(path: Path, out: Path, *, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) B matrices, so it changes the outputs."""
    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(path),
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False),
    )
    model.save_pretrained(out)
    return out


def next_logits(policy: TransformersChatModel, model: torch.nn.Module) -> torch.Tensor:
    ids = torch.tensor([policy.prompt_ids([{"role": "user", "content": QUESTIONS[0]}])])
    with torch.no_grad():
        return model(input_ids=ids).logits[0, -1]


def test_load_adapter_serves_the_merged_adapter_and_records_its_version(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    policy = greedy(tiny_model_dir)
    base_logits = next_logits(policy, policy.model)
    first = save_adapter(tiny_model_dir, tmp_path / "a", seed=1)
    second = save_adapter(tiny_model_dir, tmp_path / "b", seed=2)

    policy.load_adapter(first, version="policy-v1")
    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), first
    )
    assert not torch.allclose(next_logits(policy, policy.model), base_logits, atol=1e-3)
    assert torch.allclose(
        next_logits(policy, policy.model), next_logits(policy, reference), atol=1e-4
    )
    assert trace_of(policy.invoke(QUESTIONS[0])).policy_version == "policy-v1"

    # A second adapter replaces the first (it does not stack on it).
    policy.load_adapter(second, version="policy-v2")
    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), second
    )
    assert torch.allclose(
        next_logits(policy, policy.model), next_logits(policy, reference), atol=1e-4
    )
    assert trace_of(policy.invoke(QUESTIONS[0])).policy_version == "policy-v2"
    assert type(policy.model).__name__ == "Qwen2ForCausalLM"  # no PEFT wrappers left behind


def test_load_state_dict_replaces_weights_between_batches(tiny_model_dir: Path) -> None:
    policy = greedy(tiny_model_dir)
    before = trace_of(policy.invoke(QUESTIONS[0]))
    state = {k: v * 0.5 for k, v in policy.model.state_dict().items() if "mlp" in k}
    policy.load_state_dict(state, version="halved-mlp")
    after = trace_of(policy.invoke(QUESTIONS[0]))
    assert after.policy_version == "halved-mlp" and before.policy_version == "base"
    assert after.completion_logprobs != before.completion_logprobs


def test_load_adapter_rejects_a_folder_without_an_adapter(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(PolicyError, match="not a PEFT adapter folder"):
        greedy(tiny_model_dir).load_adapter(tmp_path, version="x")
