"""User simulators from their specs (``--user-sim SPEC``): the LLM that plays the user.

A spec is written in the grammar every chat model of hero-agents uses (`hero_agents.model_spec`):
``default`` or a model folder (in process), ``vllm:URL#NAME``, ``openai:MODEL`` or
``openai-compatible:URL#MODEL``.

Every simulator is reached through an OpenAI-compatible chat endpoint by LangChain's
`ChatOpenAI` (chat completions API): a vLLM server, a hosted API, or an in-process model that
`LocalChatEndpoint` serves on loopback. The API key comes from ``$HERO_USER_SIM_API_KEY`` (any
kind), else ``$OPENAI_API_KEY`` (``openai:`` only); it is held by the client alone.
"""

from __future__ import annotations

from types import TracebackType

from langchain_openai import ChatOpenAI

from hero_agents.adapters.reflectors.local_endpoint import LocalChatEndpoint
from hero_agents.errors import ConfigError
from hero_agents.model_spec import USER_SIM_KINDS, ModelSpec, forms, parse_model_spec
from hero_agents.model_spec import api_key as model_api_key

API_KEY_ENV = "HERO_USER_SIM_API_KEY"
"""The environment variable the user simulator's API key is read from (any kind)."""

USER_SIM_SPEC_FORMS = forms(USER_SIM_KINDS)
"""The valid spec forms (the grammar of `hero_agents.model_spec`), for errors and CLI help."""


def parse_user_sim_spec(text: str) -> ModelSpec:
    """Parse a user-simulator spec; a bad one raises `ConfigError` listing the valid forms."""
    return parse_model_spec(text, kinds=USER_SIM_KINDS, role="user-simulator")


class UserSimModel:
    """The chat model a user-simulator spec names, and the loopback endpoint it may own.

    Use it as a context manager (or call `close`): closing stops the loopback endpoint of an
    in-process model.
    """

    def __init__(
        self, spec: ModelSpec, model: ChatOpenAI, endpoint: LocalChatEndpoint | None = None
    ) -> None:
        self.spec = spec
        self.model = model
        self._endpoint = endpoint

    @property
    def name(self) -> str:
        """The canonical spec, e.g. for trajectories' reward info."""
        return str(self.spec)

    def close(self) -> None:
        """Stop the loopback endpoint of an in-process simulator (no-op otherwise)."""
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


def load_user_sim(
    spec: str | ModelSpec,
    *,
    temperature: float = 0.0,
    max_tokens: int = 512,
    seed: int | None = None,
    timeout_s: float = 600.0,
    api_key: str | None = None,
    device: str = "auto",
) -> UserSimModel:
    """The user simulator a spec names (`USER_SIM_SPEC_FORMS`), sampling at `temperature`
    (tau2-bench's default is 0) with at most `max_tokens` per reply. An in-process model
    (``default`` or a folder) is loaded on `device` (``auto``, ``cpu``, ``cuda``, ``cuda:N``)
    and served on loopback."""
    parsed = parse_user_sim_spec(spec) if isinstance(spec, str) else spec
    endpoint: LocalChatEndpoint | None = None
    if parsed.in_process:
        from hero_agents.adapters.policy import load_policy

        served = load_policy(
            parsed,
            device=device,
            temperature=temperature,
            max_new_tokens=max_tokens,
            seed=seed,
        )
        endpoint = LocalChatEndpoint(served, model_name=str(parsed)).start()
        base_url, model_name = endpoint.url, str(parsed)
    elif parsed.kind == "openai":
        base_url, model_name = None, parsed.name
    elif parsed.kind == "vllm" and parsed.name is None:
        raise ConfigError(f"{parsed}: name the served model, e.g. {parsed}#user-sim")
    else:
        base_url, model_name = parsed.base_url, parsed.name
    try:
        model = ChatOpenAI(
            model=model_name,
            base_url=base_url,
            # local servers (vLLM, the loopback endpoint) take any key
            api_key=model_api_key(parsed, api_key, API_KEY_ENV) or "EMPTY",
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
