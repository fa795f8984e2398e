"""Policy backends: chat models the agent calls (in-process transformers, vLLM server).

Names are imported on first use, so importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hero_agents.adapters.policy.default_model import DEFAULT_MODEL_NAME, default_model_path
    from hero_agents.adapters.policy.registry import load_policy
    from hero_agents.adapters.policy.tool_calls import (
        ParsedToolCalls,
        parse_tool_calls,
        tool_chat_template,
    )
    from hero_agents.adapters.policy.transformers_chat import TransformersChatModel

_EXPORTS = {
    "DEFAULT_MODEL_NAME": "default_model",
    "ParsedToolCalls": "tool_calls",
    "TransformersChatModel": "transformers_chat",
    "default_model_path": "default_model",
    "load_policy": "registry",
    "parse_tool_calls": "tool_calls",
    "tool_chat_template": "tool_calls",
}

__all__ = [
    "DEFAULT_MODEL_NAME",
    "ParsedToolCalls",
    "TransformersChatModel",
    "default_model_path",
    "load_policy",
    "parse_tool_calls",
    "tool_chat_template",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
