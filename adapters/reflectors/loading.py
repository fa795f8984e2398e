"""Build a `Reflector` from a spec string such as ``openai:gpt-4o-mini``, ``demo`` or
``grounded+self``."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from dataclasses import fields
from typing import Any, Literal
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel

from hero_agents.adapters.reflectors.local_endpoint import LocalChatEndpoint
from hero_agents.adapters.reflectors.openai_reflector import OpenAIReflector, OpenAIReflectorConfig
from hero_agents.environment import Environment
from hero_agents.errors import ConfigError
from hero_agents.model_spec import api_key as model_api_key
from hero_agents.redaction import Redactor
from hero_agents.reflection.base import Reflector
from hero_agents.reflection.baselines import DemoReflector, EnvFeedbackReflector
from hero_agents.reflection.grounded import GroundedReflector
from hero_agents.reflection.redacting import RedactingReflector
from hero_agents.reflection.reference import ReferenceReflector
from hero_agents.reflection.spec import ReflectorSpec, parse_reflector_spec
from hero_agents.trajectory import Trajectory

API_KEY_ENV = "HERO_REFLECTOR_API_KEY"
"""The environment variable the reflector's API key is read from (any kind)."""

_CONFIG_FIELDS = {f.name for f in fields(OpenAIReflectorConfig)} - {"model", "base_url", "kind"}


def _llm_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - _CONFIG_FIELDS
    if unknown:
        raise ConfigError(
            f"unknown reflector options {sorted(unknown)}; valid: {sorted(_CONFIG_FIELDS)}"
        )
    return options


def self_reflector(model: BaseChatModel, *, name: str = "self", **options: Any) -> OpenAIReflector:
    """The policy reflects on its own trajectories: `model` served on loopback by a
    `LocalChatEndpoint`, diagnosed by the same `OpenAIReflector` as any API model.

    No cache by default (the policy's weights change between calls), one call at a time, an
    8192-token context, and, when the model does constrained decoding (`TransformersChatModel`),
    replies constrained to a schema exact for each request, so that even a small policy always
    answers in the diagnoses' format. Close the reflector to stop the endpoint.
    """
    options = _llm_options(dict(options))
    constrained = "response_format" in type(model).model_fields
    options.setdefault("structured_output", "json_schema" if constrained else "off")
    options.setdefault("exact_schema", constrained)
    # Room for a whole capped diagnosis (hint 200 characters, cause 100) even in small vocabularies.
    options.setdefault("tokens_per_diagnosis", 320 if constrained else 120)
    options.setdefault("max_concurrency", 1)
    options.setdefault("context_tokens", 8192)
    options.setdefault("timeout_s", 1800.0)
    options.setdefault("max_retries", 0)
    endpoint = LocalChatEndpoint(model, model_name=name).start()
    try:
        config = OpenAIReflectorConfig(
            model=name, base_url=endpoint.url, kind="self", **{"name": name, **options}
        )
        return OpenAIReflector(config, on_close=endpoint.stop)
    except BaseException:
        endpoint.stop()
        raise


def is_hosted(spec: ReflectorSpec) -> bool:
    """True when the reflector sends traces off this machine: the OpenAI API, or an
    OpenAI-compatible server whose host is not loopback (``localhost``, 127.0.0.0/8, ::1);
    ``grounded+SPEC`` when SPEC does."""
    if spec.kind == "grounded":
        return spec.inner is not None and is_hosted(spec.inner)
    if spec.kind == "openai":
        return True
    if spec.kind not in ("openai-compatible", "vllm") or spec.model is None:
        return False
    host = urlsplit(spec.model.base_url or "").hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: assume it resolves off this machine


def load_reflector(
    spec: str | ReflectorSpec,
    *,
    demos: Iterable[Trajectory] | None = None,
    env: Environment | None = None,
    api_key: str | None = None,
    redaction: Redactor | Literal["auto"] | None = "auto",
    device: str = "auto",
    end_of_turn_ids: Collection[int] = (),
    **options: Any,
) -> Reflector:
    """The reflector a spec names (see `hero_agents.reflection.spec.SPEC_FORMS`).

    `demos` are the trajectories the ``demo`` baseline draws successful demonstrations from;
    `env` is the environment the ``reference`` reflector reads reference solutions from.
    `options` set `OpenAIReflectorConfig` fields for the LLM kinds (``openai``,
    ``openai-compatible``, ``self``, and those beneath ``grounded+``); ``grounded`` alone takes
    only ``max_concurrency``. The API key comes from `api_key`, else
    ``$HERO_REFLECTOR_API_KEY``, else (``openai:`` only) ``$OPENAI_API_KEY``.

    `redaction` ``"auto"`` redacts personal data and secrets (a default `Redactor`) for hosted
    reflectors (`is_hosted`) and for no others; a `Redactor` redacts with it whatever the kind;
    None never redacts. A redacting reflector is a `RedactingReflector` (its ``report`` says
    what was redacted). Beneath ``grounded+``, only the inner reflector's input is redacted:
    what the trace proves is read from the trajectory itself, on this machine.

    `device` places the policy a ``self`` reflector loads in process (``auto``, ``cpu``,
    ``cuda``, ``cuda:N``); the other kinds ignore it.

    `end_of_turn_ids` (the policy's end-of-turn token ids) let a grounded reflector prove that
    an action with captured tokens was cut off by the token budget.
    """
    parsed = parse_reflector_spec(spec) if isinstance(spec, str) else spec
    if parsed.kind == "grounded":
        if parsed.inner is None:
            unknown = set(options) - {"max_concurrency"}
            if unknown:
                raise ConfigError(
                    f"unknown reflector options {sorted(unknown)}; 'grounded' alone takes only "
                    "max_concurrency"
                )
            return GroundedReflector(end_of_turn_ids=end_of_turn_ids, **options)
        inner = load_reflector(
            parsed.inner,
            demos=demos,
            env=env,
            api_key=api_key,
            redaction=redaction,
            device=device,
            **options,
        )
        return GroundedReflector(inner, end_of_turn_ids=end_of_turn_ids)
    redactor = (Redactor() if is_hosted(parsed) else None) if redaction == "auto" else redaction
    reflector = _load(parsed, demos=demos, env=env, api_key=api_key, device=device, options=options)
    return reflector if redactor is None else RedactingReflector(reflector, redactor)


def _load(
    parsed: ReflectorSpec,
    *,
    demos: Iterable[Trajectory] | None,
    env: Environment | None,
    api_key: str | None,
    device: str,
    options: dict[str, Any],
) -> Reflector:
    if parsed.kind == "env-feedback":
        return EnvFeedbackReflector()
    if parsed.kind == "demo":
        if demos is None:
            raise ConfigError(
                "the demo reflector needs trajectories to draw successful demos from "
                "(the input file, or --demos FILE)"
            )
        return DemoReflector(demos)
    if parsed.kind == "reference":
        if env is None:
            raise ConfigError(
                "the reference reflector needs the benchmark environment the trajectories come "
                "from, which knows their reference solutions (production traces have none)"
            )
        return ReferenceReflector(env)
    model = parsed.model
    assert model is not None  # every other kind is handled above
    if model.kind == "self" or model.in_process:
        from hero_agents.adapters.policy import load_policy

        # hero reflect's `self`: the policy the trajectories come from is the default one.
        policy = load_policy("default" if model.kind == "self" else str(model), device=device)
        return self_reflector(policy, name=str(parsed), **options)
    if model.kind == "vllm" and model.name is None:
        raise ConfigError(
            f"{parsed}: name the served model a vLLM reflector uses, e.g. {parsed}#policy-v0"
        )
    kind = "openai" if model.kind == "openai" else "openai-compatible"
    config = OpenAIReflectorConfig(
        model=model.name or "",
        base_url=model.base_url,
        api_key=model_api_key(model, api_key, API_KEY_ENV),
        kind=kind,
        **_llm_options(dict(options)),
    )
    return OpenAIReflector(config)
