"""Reflector specs: the one-line strings that name a reflector, e.g. ``openai:gpt-4o-mini`` or
``grounded+self`` (what the trace proves, over the policy's own diagnoses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from hero_agents.errors import ConfigError

ReflectorKind = Literal[
    "openai", "openai-compatible", "self", "env-feedback", "demo", "reference", "grounded"
]

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
                                     (privileged; needs the environment)

  grounded                           what the trace proves (tool errors, malformed or cut-off
                                     calls, schema violations, repeats); other turns: no hint
  grounded+SPEC                      proven facts over an LLM reflector's diagnoses,
                                     e.g. grounded+self, grounded+openai:gpt-4o-mini"""
"""The valid spec forms, as shown in error messages and CLI help."""


@dataclass(frozen=True)
class ReflectorSpec:
    """A parsed reflector spec; ``str(spec)`` is its canonical form (it holds no secrets)."""

    kind: ReflectorKind
    model: str | None = None
    base_url: str | None = None
    inner: ReflectorSpec | None = None
    """The reflector beneath ``grounded+``; None for ``grounded`` alone and the other kinds."""

    def __str__(self) -> str:
        if self.kind == "grounded":
            return "grounded" if self.inner is None else f"grounded+{self.inner}"
        if self.kind == "openai":
            return f"openai:{self.model}"
        if self.kind == "openai-compatible":
            return f"openai-compatible:{self.base_url}#{self.model}"
        if self.kind == "self":
            return f"self:{self.model}"
        return self.kind


class _BadSpec(Exception):
    """Why one reflector's spec is not valid; `parse_reflector_spec` names the whole spec."""


_NOT_UNDER_GROUNDED = {
    "env-feedback": "env-feedback cannot be grounded: it is a baseline's raw feedback, not a "
    "judgment to correct, and its mode trains on its own diagnoses only",
    "demo": "demo cannot be grounded: it is a baseline's whole-episode feedback, not a judgment "
    "to correct, and its mode trains on its own diagnoses only",
    "grounded": "grounded cannot be grounded again (it would add nothing): write 'grounded'",
}
"""Kinds refused beneath ``grounded+``, and why."""


def parse_reflector_spec(text: str) -> ReflectorSpec:
    """Parse a spec string; a bad one raises `ConfigError` listing the valid forms."""
    spec = text.strip()
    head, plus, inner = spec.partition("+")
    try:
        if head.strip() != "grounded":
            return _parse_single(spec)
        if not plus:
            return ReflectorSpec(kind="grounded")
        inner = inner.strip()
        if not inner:
            raise _BadSpec("'grounded+' needs a reflector after the '+', e.g. grounded+self")
        if inner.partition("+")[0].strip() == "grounded":
            raise _BadSpec(_NOT_UNDER_GROUNDED["grounded"])
        try:
            parsed = _parse_single(inner)
        except _BadSpec as problem:
            raise _BadSpec(f"its inner reflector {inner!r} is not valid: {problem}") from None
        if parsed.kind in _NOT_UNDER_GROUNDED:
            raise _BadSpec(_NOT_UNDER_GROUNDED[parsed.kind])
        return ReflectorSpec(kind="grounded", inner=parsed)
    except _BadSpec as problem:
        raise ConfigError(
            f"invalid reflector spec {text!r}: {problem}. Valid forms:\n{SPEC_FORMS}"
        ) from None


def _parse_single(spec: str) -> ReflectorSpec:
    """One reflector's spec, without ``grounded+``."""
    kind, sep, rest = spec.partition(":")
    if kind in ("env-feedback", "demo", "reference", "grounded"):
        if sep:
            more = "; write grounded+SPEC to ground another reflector" if kind == "grounded" else ""
            raise _BadSpec(f"'{kind}' takes no argument{more}")
        return ReflectorSpec(kind=kind)
    if kind == "self":
        policy = rest.strip() if sep else "default"
        if not policy:
            raise _BadSpec("'self:' needs a policy after the colon")
        return ReflectorSpec(kind="self", model=policy)
    if kind == "openai":
        if not rest.strip():
            raise _BadSpec("'openai:' needs a model name")
        return ReflectorSpec(kind="openai", model=rest.strip())
    if kind == "openai-compatible":
        url, hash_sign, model = rest.rpartition("#")
        if not hash_sign or not url or not model.strip():
            raise _BadSpec("expected openai-compatible:URL#MODEL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _BadSpec(f"{url!r} is not an http(s) URL")
        if parts.username or parts.password:
            raise _BadSpec(
                "the URL holds credentials; put the key in $HERO_REFLECTOR_API_KEY instead"
            )
        if parts.query or parts.fragment:
            raise _BadSpec("the URL may not have a query string")
        return ReflectorSpec(
            kind="openai-compatible", model=model.strip(), base_url=url.rstrip("/")
        )
    raise _BadSpec(f"unknown kind {kind!r}")
