"""Reflector specs: the one-line strings that name a reflector, e.g. ``openai:gpt-4o-mini`` or
``grounded+self`` (what the trace proves, over the policy's own diagnoses).

A reflector is either a chat model, named in the grammar every chat model of hero-agents uses
(`hero_agents.model_spec`), or one of the reflectors that need no model: the baselines'
feedback, the benchmark's reference solution, and what the trace proves (``grounded``, alone or
over another reflector).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hero_agents.errors import ConfigError
from hero_agents.model_spec import (
    REFLECTOR_KINDS,
    BadModelSpec,
    ModelKind,
    ModelSpec,
    forms,
    read_model_spec,
)

ReflectorKind = ModelKind | Literal["env-feedback", "demo", "reference", "grounded"]

SPEC_FORMS = (
    forms(REFLECTOR_KINDS)
    + """
                               (self: the policy being trained; for hero reflect, the default)
  env-feedback                 hint = the raw next observation (env-feedback-only SD)
  demo                         hint = a successful trajectory of the same task (SDPO-style)
  reference                    hint = the benchmark's reference solution, turn by turn
                               (privileged; needs the environment)
  grounded                     what the trace proves (tool errors, malformed or cut-off calls,
                               schema violations, repeats); other turns: no hint
  grounded+SPEC                proven facts over a model's diagnoses, e.g. grounded+self,
                               grounded+openai:gpt-4o-mini
  (API keys: $HERO_REFLECTOR_API_KEY, or $OPENAI_API_KEY for openai:)"""
)
"""The valid spec forms, as shown in error messages and CLI help."""


@dataclass(frozen=True)
class ReflectorSpec:
    """A parsed reflector spec; ``str(spec)`` is its canonical form (it holds no secrets)."""

    kind: ReflectorKind
    model: ModelSpec | None = None
    """The chat model of a model-backed reflector (its kind is the model's)."""
    inner: ReflectorSpec | None = None
    """The reflector beneath ``grounded+``; None for ``grounded`` alone and the other kinds."""

    @property
    def is_model(self) -> bool:
        """Whether a chat model writes the diagnoses (grounded over one excluded)."""
        return self.model is not None

    @property
    def privileged(self) -> bool:
        """It sees the benchmark's answers (``reference``)."""
        return self.kind == "reference" or (self.inner is not None and self.inner.privileged)

    def __str__(self) -> str:
        if self.kind == "grounded":
            return "grounded" if self.inner is None else f"grounded+{self.inner}"
        if self.model is not None:
            return str(self.model)
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
    kind, sep, _ = spec.partition(":")
    if kind in ("env-feedback", "demo", "reference", "grounded"):
        if sep:
            more = "; write grounded+SPEC to ground another reflector" if kind == "grounded" else ""
            raise _BadSpec(f"'{kind}' takes no argument{more}")
        return ReflectorSpec(kind=kind)  # type: ignore[arg-type]
    try:
        model = read_model_spec(spec)
    except BadModelSpec as problem:
        raise _BadSpec(str(problem) if sep else f"unknown kind {spec!r}") from None
    return ReflectorSpec(kind=model.kind, model=model)
