"""A tiny, random, offline Qwen2 model for tests and smoke runs.

`build_tiny_model` writes a ~0.7M-parameter Qwen2 causal LM with a byte-level BPE tokenizer
trained on generated chat / JSON / tool-call text, and TRL's ``qwen2_5.jinja`` chat template (so
TRL recognizes its tool-calling format). Everything is seeded: two builds are identical. It is
random, so it writes garbage; it is meant for checking shapes, plumbing and exact log-probs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

from hero_agents.adapters.policy.tool_calls import tool_chat_template

TINY_MODEL_VERSION = "1"
"""Bumped whenever `build_tiny_model`'s output changes (lets callers key caches on it)."""

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
"""Qwen-style special tokens, in id order (ids 0, 1, 2)."""

_VOCAB_SIZE = 1024  # an upper bound: the small corpus yields ~850 tokens
_SEED = 1234

_WORDS = (
    "the a an order item user flight booking cancel change refund address account status "
    "please help me find my want to is was of for with and or not can you could would "
    "price total payment card email name id number date time city hotel ticket seat "
    "weather search lookup get set update create delete list result error invalid "
    "sure okay thanks hello sorry done yes no tool call function arguments response"
).split()
_TOOLS = ("get_weather", "find_order", "cancel_order", "search_flights", "add", "lookup_user")
_KEYS = ("city", "order_id", "user_id", "a", "b", "date", "reason", "query")


def _training_corpus(rng: random.Random, size: int = 20_000) -> list[str]:
    """About `size` characters of chat-, JSON- and tool-call-shaped text."""

    def sentence() -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 12))).capitalize() + "."

    def arguments() -> dict[str, object]:
        keys = rng.sample(_KEYS, rng.randint(1, 3))
        return {k: rng.choice([rng.randint(0, 999), rng.choice(_WORDS)]) for k in keys}

    texts: list[str] = []
    total = 0
    while total < size:
        name = rng.choice(_TOOLS)
        call = json.dumps({"name": name, "arguments": arguments()})
        tool = json.dumps(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": sentence(),
                    "parameters": {"type": "object", "properties": {"x": {"type": "string"}}},
                },
            }
        )
        text = (
            f"<|im_start|>system\n{sentence()}\n\n# Tools\n<tools>\n{tool}\n</tools><|im_end|>\n"
            f"<|im_start|>user\n{sentence()} {rng.randint(0, 99999)}<|im_end|>\n"
            f"<|im_start|>assistant\n<tool_call>\n{call}\n</tool_call><|im_end|>\n"
            f"<|im_start|>user\n<tool_response>\n{json.dumps(arguments())}\n</tool_response>"
            f"<|im_end|>\n<|im_start|>assistant\n{sentence()} {sentence()}<|im_end|>\n"
        )
        texts.append(text)
        total += len(text)
    return texts


def build_tiny_model(path: str | Path) -> Path:
    """Write a tiny random Qwen2 model, its tokenizer and chat template to `path`; return it.

    Deterministic: the same `TINY_MODEL_VERSION` always writes the same tokenizer and weights.
    """
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    rng = random.Random(_SEED)

    # The same normalizer and pre-tokenizer as transformers' Qwen2Tokenizer, which is what
    # AutoTokenizer (and vLLM) instantiate for a "qwen2" model: both then encode identically.
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_corpus(rng), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
        chat_template=tool_chat_template(),
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(path)

    im_end, endoftext = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=im_end,
        pad_token_id=endoftext,
    )
    with torch.random.fork_rng():  # seeded weights, caller's RNG state untouched
        torch.manual_seed(_SEED)
        model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[im_end, endoftext], pad_token_id=endoftext, do_sample=False
    )
    model.save_pretrained(path)
    return path


class ScriptedChatModel(FakeMessagesListChatModel):
    """A stand-in chat model that replies with scripted messages, in order, and binds tools.

    For tests and overhead benchmarks: it costs nothing, so any time measured is plumbing.
    """

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, BaseMessage]:
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=formatted, **kwargs)
