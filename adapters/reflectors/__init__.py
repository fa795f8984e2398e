"""Reflector clients that talk to models: OpenAI-compatible chat APIs, and a loopback endpoint
that serves an in-process LangChain chat model (the policy) through the same API."""

from hero_agents.adapters.reflectors.loading import (
    API_KEY_ENV,
    is_hosted,
    load_reflector,
    self_reflector,
)
from hero_agents.adapters.reflectors.local_endpoint import LocalChatEndpoint
from hero_agents.adapters.reflectors.openai_reflector import OpenAIReflector, OpenAIReflectorConfig

__all__ = [
    "API_KEY_ENV",
    "LocalChatEndpoint",
    "OpenAIReflector",
    "OpenAIReflectorConfig",
    "is_hosted",
    "load_reflector",
    "self_reflector",
]
