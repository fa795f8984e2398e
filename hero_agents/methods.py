"""The training methods a run or a comparison can use: one row per method.

Each row says which reflector writes the teacher's context, what that context is, which turns
are trained and which trainer signal is used. Code asks the row (``METHODS[name].signal``)
instead of comparing method names; a new method is one new row.

A method whose reflector is the run's own (``reflector: config``) is named with it where runs
are listed side by side: ``hero[grounded+self]``. `parse_arm` reads that form back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hero_agents.errors import ConfigError

Reflection = Literal["config", "env-feedback", "demo", "reference", "none"]
Demonstrations = Literal["rollouts", "reference"]


@dataclass(frozen=True)
class Method:
    """One training method."""

    name: str
    reflection: Reflection
    """Who writes the teacher's context: the run's ``reflector`` setting (``config``), a fixed
    baseline reflector, the benchmark's reference solution, or nobody (pure GRPO)."""
    teacher_context: Literal["diagnosis", "observation", "demonstration", "none"]
    signal: Literal["hero", "env-feedback", "demo", "grpo", "hero+grpo"]
    """The trainer's signal (`HeroConfig.signal`)."""
    turns: Literal["all", "flagged"] = "all"
    demonstrations: Demonstrations | None = None
    """Where a ``demo`` teacher's demonstrations come from."""
    privileged: bool = False
    """It sees the benchmark's answers: an upper bound, never evidence against a baseline."""
    note_placement: Literal["user-message", "system-message", "system-prompt"] = "user-message"
    """Where its teacher reads the note by default: chosen per teacher context with
    ``hero probe`` on train tasks (README, Results): a diagnosis closes the system prompt,
    where it keeps the token that opens a tool call; a raw observation teaches best right
    before acting."""
    summary: str = ""

    @property
    def uses_run_reflector(self) -> bool:
        return self.reflection == "config"

    @property
    def needs_group_contrast(self) -> bool:
        """GRPO-style advantages compare the rollouts of one task: groups of two or more."""
        return self.signal in ("grpo", "hero+grpo")

    def label(self, reflector: str | None = None) -> str:
        """The name shown in tables: ``hero[SPEC]`` for a method that takes the run's
        reflector; `privileged_label` is appended by whoever prints it."""
        return f"{self.name}[{reflector}]" if self.uses_run_reflector and reflector else self.name


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method(
            "hero",
            "config",
            "diagnosis",
            "hero",
            note_placement="system-prompt",
            summary="per-turn hindsight diagnoses of the run's reflector as teacher context",
        ),
        Method(
            "hero-targeted",
            "config",
            "diagnosis",
            "hero",
            turns="flagged",
            note_placement="system-prompt",
            summary="hero on turns diagnosed invalid or unnecessary, plus a share of the others",
        ),
        Method(
            "hero+grpo",
            "config",
            "diagnosis",
            "hero+grpo",
            note_placement="system-prompt",
            summary="a weighted blend of hero and grpo",
        ),
        Method(
            "hero-reference",
            "reference",
            "diagnosis",
            "hero",
            note_placement="system-prompt",
            privileged=True,
            summary="hero with notes from the benchmark's reference solution (an upper bound)",
        ),
        Method(
            "env-feedback",
            "env-feedback",
            "observation",
            "env-feedback",
            summary="the raw next observation as teacher context",
        ),
        Method(
            "demo",
            "demo",
            "demonstration",
            "demo",
            demonstrations="rollouts",
            summary="a successful rollout of the same task as teacher context (SDPO)",
        ),
        Method(
            "demo-reference",
            "demo",
            "demonstration",
            "demo",
            demonstrations="reference",
            privileged=True,
            summary="the benchmark's reference demonstration as teacher context",
        ),
        Method(
            "grpo",
            "none",
            "none",
            "grpo",
            summary="outcome reward with group-normalized advantages; no teacher",
        ),
    )
}
"""Every method, by name."""

METHOD_NAMES: tuple[str, ...] = tuple(METHODS)

PRIVILEGED_MARK = " (privileged)"
"""Appended wherever a privileged method or reflector is named in a table, report or log."""


def method(name: str) -> Method:
    """The method called `name`; an unknown name is a `ConfigError` listing the valid ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; valid: {', '.join(METHOD_NAMES)}") from None


def parse_arm(text: str) -> tuple[Method, str | None]:
    """``hero[grounded+self]`` -> (the hero method, ``"grounded+self"``); ``grpo`` -> (grpo,
    None). Only methods that take the run's reflector accept a ``[SPEC]``."""
    name, bracket, rest = text.strip().partition("[")
    row = method(name.strip())
    if not bracket:
        return row, None
    if not rest.endswith("]") or not rest[:-1].strip():
        raise ConfigError(f"{text!r}: expected METHOD or METHOD[REFLECTOR], e.g. hero[self]")
    if not row.uses_run_reflector:
        raise ConfigError(f"{text!r}: method {row.name!r} has its own reflector, not a [SPEC]")
    return row, rest[:-1].strip()
