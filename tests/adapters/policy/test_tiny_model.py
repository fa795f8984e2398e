"""The tiny test model: loads with the Auto classes, round-trips chat text, is recognized by TRL."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast
from trl.chat_template_utils import add_response_schema, supports_tool_calling

from hero_agents.adapters.policy.testing import build_tiny_model
from hero_agents.adapters.policy.tool_calls import tool_chat_template

TOOL = {
    "type": "function",
    "function": {
        "name": "find_order",
        "description": "Look up an order by id.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
}
CHAT = [
    {"role": "system", "content": "You help with orders."},
    {"role": "user", "content": "Where is order #W42? Ünïcode ok\n\n  spaces"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "type": "function",
                "function": {"name": "find_order", "arguments": {"order_id": "W42"}},
            }
        ],
    },
    {"role": "tool", "content": json.dumps({"status": "shipped"})},
    {"role": "assistant", "content": "It has shipped."},
]


def test_loads_with_auto_classes_and_generates(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "qwen2"
    assert model.config.vocab_size == len(tokenizer)
    assert 0.5e6 < model.num_parameters() < 1.5e6
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    ids = tokenizer.apply_chat_template(CHAT[:2], add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if not isinstance(ids, torch.Tensor) else ids
    out = model.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids.shape[1]


def test_tokenizer_round_trips_rendered_chat(tiny_model_dir: Path) -> None:
    auto = AutoTokenizer.from_pretrained(tiny_model_dir)
    fast = PreTrainedTokenizerFast.from_pretrained(tiny_model_dir)
    text = auto.apply_chat_template(CHAT, tools=[TOOL], tokenize=False)
    assert '"name": "find_order"' in text and "<tool_call>" in text and "<tool_response>" in text
    ids = auto(text, add_special_tokens=False).input_ids
    assert auto.decode(ids) == text
    # AutoTokenizer picks Qwen2Tokenizer for a qwen2 model; it must encode like the saved file.
    assert fast(text, add_special_tokens=False).input_ids == ids
    assert ids.count(auto.convert_tokens_to_ids("<|im_start|>")) == text.count("<|im_start|>")


def test_trl_recognizes_the_tool_calling_template(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tokenizer.chat_template == tool_chat_template()
    assert supports_tool_calling(tokenizer)
    add_response_schema(tokenizer)
    call = '{"name": "find_order", "arguments": {"order_id": "W42"}}'
    parsed = tokenizer.parse_response(f"<tool_call>\n{call}\n</tool_call><|im_end|>", prefix="")
    assert parsed["tool_calls"][0]["function"] == {
        "name": "find_order",
        "arguments": {"order_id": "W42"},
    }


def test_build_is_deterministic(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again")
    for name in ("tokenizer.json", "config.json", "model.safetensors"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
