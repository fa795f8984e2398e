"""Structured outputs for the in-process policy: constrained decoding to a JSON schema.

The OpenAI ``response_format`` forms ``{"type": "json_schema", "json_schema": {"schema": ...}}``
and ``{"type": "json_object"}`` become an llguidance grammar (the engine vLLM's ``guidance``
backend uses); at each step a `TokenConstraint` masks the tokens the grammar does not allow, so
every completion parses against the schema. A small model that cannot write valid JSON on its
own (the ``self`` reflector on SmolLM2-135M) still answers in the schema.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import torch

from hero_agents.errors import ConfigError, PolicyError


def grammar_for(response_format: dict[str, Any]) -> str:
    """The llguidance grammar of an OpenAI ``response_format`` (json_schema or json_object)."""
    import llguidance

    kind = response_format.get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise ConfigError("response_format json_schema needs a 'schema' object")
    elif kind == "json_object":
        schema = {"type": "object"}
    else:
        raise ConfigError(
            f"response_format type {kind!r} is not supported; use json_schema or json_object"
        )
    grammar = llguidance.LLMatcher.grammar_from_json_schema(
        json.dumps(schema), defaults={"whitespace_flexible": False}
    )
    problem = llguidance.LLMatcher.validate_grammar(grammar)
    if problem:
        raise ConfigError(f"the response_format schema cannot be enforced: {problem}")
    return grammar


@functools.cache
def _llguidance_tokenizer(tokenizer: Any, vocab_size: int) -> Any:
    import llguidance.hf

    return llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)


class TokenConstraint:
    """One completion's grammar state: which tokens may come next, and the ones taken."""

    def __init__(self, grammar: str, tokenizer: Any, vocab_size: int) -> None:
        import llguidance

        self._matcher = llguidance.LLMatcher(_llguidance_tokenizer(tokenizer, vocab_size), grammar)
        self._check()

    def mask(self, logits: torch.Tensor) -> torch.Tensor:
        """`logits` ``(vocab,)`` with every token the grammar forbids at -inf."""
        bias = np.frombuffer(self._matcher.compute_logit_bias(), dtype=np.uint8)
        allowed = torch.from_numpy(bias[: logits.shape[-1]] > 0).to(logits.device)
        return logits.masked_fill(~allowed, float("-inf"))

    def accept(self, token: int) -> None:
        """Advance the grammar past `token` (one the mask allowed)."""
        self._matcher.consume_token(token)
        self._check()

    def _check(self) -> None:
        if self._matcher.is_error():
            raise PolicyError(f"constrained decoding failed: {self._matcher.get_error()}")
