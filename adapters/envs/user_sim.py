"""User-simulator specs: the strings that name the LLM playing the user (``--user-sim SPEC``).

Every simulator is reached through an OpenAI-compatible chat endpoint by LangChain's
`ChatOpenAI` (chat completions API): a vLLM server, a hosted API, or an in-process model that
`LocalChatEndpoint` serves on loopback. The API key comes from ``$HERO_USER_SIM_API_KEY`` (any
kind), else ``$OPENAI_API_KEY`` (``openai:`` only); it is held by the client alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

from langchain_openai import ChatOpenAI

from hero_agents.adapters.reflectors.local_endpoint import LocalChatEndpoint
from hero_agents.errors import ConfigError

API_KEY_ENV = "HERO_USER_SIM_API_KEY"
"""The environment variable the user simulator's API key is read from (any kind)."""

USER_SIM_SPEC_FORMS = """\
  openai-compatible:URL#MODEL   any OpenAI-compatible server (vLLM, ...), e.g.
                                openai-compatible:http://127.0.0.1:8000/v1#Qwen/Qwen3-32B
                                (key: $HERO_USER_SIM_API_KEY, else none)
  openai:MODEL                  a model of the OpenAI API, e.g. openai:gpt-4.1
                                (key: $HERO_USER_SIM_API_KEY or $OPENAI_API_KEY)
  local:POLICY                  an in-process model served on loopback, POLICY as for --policy
                                (e.g. local:default, local:PATH)"""
"""The valid spec forms, as shown in error messages and CLI help."""

UserSimKind = Literal["openai-compatible", "openai", "local"]


@dataclass(frozen=True)
class UserSimSpec:
    """A parsed user-simulator spec; ``str(spec)`` is its canonical form (no secrets)."""

    kind: UserSimKind
    model: str
    base_url: str | None = None

    def __str__(self) -> str:
        if self.kind == "openai-compatible":
            return f"openai-compatible:{self.base_url}#{self.model}"
        return f"{self.kind}:{self.model}"


def _invalid(text: str, why: str) -> ConfigError:
    return ConfigError(
        f"invalid user-simulator spec {text!r}: {why}. Valid forms:\n{USER_SIM_SPEC_FORMS}"
    )


def parse_user_sim_spec(text: str) -> UserSimSpec:
    """Parse a spec string; a bad one raises `ConfigError` listing the valid forms."""
    kind, sep, rest = text.strip().partition(":")
    rest = rest.strip()
    if not sep:
        raise _invalid(text, "expected KIND:ARGUMENT")
    if kind in ("openai", "local"):
        if not rest:
            raise _invalid(text, f"'{kind}:' needs a {'model' if kind == 'openai' else 'policy'}")
        return UserSimSpec(kind=kind, model=rest)
    if kind == "openai-compatible":
        url, hash_sign, model = rest.rpartition("#")
        if not hash_sign or not url or not model.strip():
            raise _invalid(text, "expected openai-compatible:URL#MODEL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _invalid(text, f"{url!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise _invalid(text, f"the URL holds credentials; put the key in ${API_KEY_ENV}")
        if parts.query:
            raise _invalid(text, "the URL may not have a query string")
        return UserSimSpec(kind=kind, model=model.strip(), base_url=url.rstrip("/"))
    raise _invalid(text, f"unknown kind {kind!r}")


class UserSimModel:
    """The chat model a user-simulator spec names, and the loopback endpoint it may own.

    Use it as a context manager (or call `close`): closing stops a ``local:`` endpoint.
    """

    def __init__(
        self, spec: UserSimSpec, model: ChatOpenAI, endpoint: LocalChatEndpoint | None = None
    ) -> None:
        self.spec = spec
        self.model = model
        self._endpoint = endpoint

    @property
    def name(self) -> str:
        """The canonical spec, e.g. for trajectories' reward info."""
        return str(self.spec)

    def close(self) -> None:
        """Stop the loopback endpoint of a ``local:`` simulator (no-op otherwise)."""
        if self._endpoint is not None:
            self._endpoint.stop()
            self._endpoint = None

    def __enter__(self) -> UserSimModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _api_key(spec: UserSimSpec, api_key: str | None) -> str:
    if api_key:
        return api_key
    if os.environ.get(API_KEY_ENV):
        return os.environ[API_KEY_ENV]
    if spec.kind == "openai":
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigError(f"{spec} needs an API key: set ${API_KEY_ENV} or $OPENAI_API_KEY")
        return key
    return "EMPTY"  # local servers (vLLM, the loopback endpoint) take any key


def load_user_sim(
    spec: str | UserSimSpec,
    *,
    temperature: float = 0.0,
    max_tokens: int = 512,
    seed: int | None = None,
    timeout_s: float = 600.0,
    api_key: str | None = None,
    device: str = "auto",
) -> UserSimModel:
    """The user simulator a spec names (`USER_SIM_SPEC_FORMS`), sampling at `temperature`
    (tau2-bench's default is 0) with at most `max_tokens` per reply. A ``local:`` model is
    loaded on `device` (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""
    parsed = parse_user_sim_spec(spec) if isinstance(spec, str) else spec
    endpoint: LocalChatEndpoint | None = None
    if parsed.kind == "local":
        from hero_agents.adapters.policy import load_policy

        served = load_policy(
            parsed.model,
            device=device,
            temperature=temperature,
            max_new_tokens=max_tokens,
            seed=seed,
        )
        endpoint = LocalChatEndpoint(served, model_name=str(parsed)).start()
        base_url, model_name = endpoint.url, str(parsed)
    elif parsed.kind == "openai":
        base_url, model_name = None, parsed.model
    else:
        base_url, model_name = parsed.base_url, parsed.model
    try:
        model = ChatOpenAI(
            model=model_name,
            base_url=base_url,
            api_key=_api_key(parsed, api_key),
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            timeout=timeout_s,
            max_retries=2,
            use_responses_api=False,
        )
    except BaseException:
        if endpoint is not None:
            endpoint.stop()
        raise
    return UserSimModel(parsed, model, endpoint)
