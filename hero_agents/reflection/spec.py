"""Reflector specs: the one-line strings that name a reflector, e.g. ``openai:gpt-4o-mini``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from hero_agents.errors import ConfigError

ReflectorKind = Literal["openai", "openai-compatible", "self", "env-feedback", "demo", "reference"]

SPEC_FORMS = """\
  openai:MODEL                       a model of the OpenAI API, e.g. openai:gpt-4o-mini
                                     (key: $HERO_REFLECTOR_API_KEY or $OPENAI_API_KEY)
  openai-compatible:URL#MODEL        any OpenAI-compatible server (vLLM, Azure OpenAI v1, ...),
                                     e.g. openai-compatible:http://127.0.0.1:8000/v1#Qwen
                                     (key: $HERO_REFLECTOR_API_KEY, else none)
  self | self:POLICY                 the policy model reflects on its own trajectories
                                     (POLICY as for load_policy, default 'default')
  env-feedback                       hint = the raw next observation (env-feedback-only SD)
  demo                               hint = a successful trajectory of the same task (SDPO-style)
  reference                          hint = the benchmark's reference solution, turn by turn
                                     (privileged; needs the environment)"""
"""The valid spec forms, as shown in error messages and CLI help."""


@dataclass(frozen=True)
class ReflectorSpec:
    """A parsed reflector spec; ``str(spec)`` is its canonical form (it holds no secrets)."""

    kind: ReflectorKind
    model: str | None = None
    base_url: str | None = None

    def __str__(self) -> str:
        if self.kind == "openai":
            return f"openai:{self.model}"
        if self.kind == "openai-compatible":
            return f"openai-compatible:{self.base_url}#{self.model}"
        if self.kind == "self":
            return f"self:{self.model}"
        return self.kind


def _invalid(text: str, why: str) -> ConfigError:
    return ConfigError(f"invalid reflector spec {text!r}: {why}. Valid forms:\n{SPEC_FORMS}")


def parse_reflector_spec(text: str) -> ReflectorSpec:
    """Parse a spec string; a bad one raises `ConfigError` listing the valid forms."""
    spec = text.strip()
    kind, sep, rest = spec.partition(":")
    if kind in ("env-feedback", "demo", "reference"):
        if sep:
            raise _invalid(text, f"'{kind}' takes no argument")
        return ReflectorSpec(kind=kind)
    if kind == "self":
        policy = rest.strip() if sep else "default"
        if not policy:
            raise _invalid(text, "'self:' needs a policy after the colon")
        return ReflectorSpec(kind="self", model=policy)
    if kind == "openai":
        if not rest.strip():
            raise _invalid(text, "'openai:' needs a model name")
        return ReflectorSpec(kind="openai", model=rest.strip())
    if kind == "openai-compatible":
        url, hash_sign, model = rest.rpartition("#")
        if not hash_sign or not url or not model.strip():
            raise _invalid(text, "expected openai-compatible:URL#MODEL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _invalid(text, f"{url!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise _invalid(
                text, "the URL holds credentials; put the key in $HERO_REFLECTOR_API_KEY instead"
            )
        if parts.query or parts.fragment:
            raise _invalid(text, "the URL may not have a query string")
        return ReflectorSpec(
            kind="openai-compatible", model=model.strip(), base_url=url.rstrip("/")
        )
    raise _invalid(text, f"unknown kind {kind!r}")
