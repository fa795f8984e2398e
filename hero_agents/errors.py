"""One exception hierarchy for hero-agents: catch `HeroError` to catch them all.

Control flow never reads an error's message: where code must tell one failure from another, it
catches a subclass (`NothingToTrain`, `OutputExists`...).
"""

from __future__ import annotations


class HeroError(Exception):
    """Base class of every error raised on purpose by hero-agents."""


class TraceFormatError(HeroError):
    """A trace file or record is malformed; the message names the file and line."""


class ConfigError(HeroError):
    """A name, spec or option given by the user is not valid; the message lists valid ones."""


class OutputError(HeroError):
    """An output path cannot be used as asked (it exists, is an input, or is not ours)."""


class EnvError(HeroError):
    """An environment could not be built or an episode could not be scored."""


class PolicyError(HeroError):
    """A policy backend failed to load, generate or serve."""


class ReflectionError(HeroError):
    """A reflector could not produce diagnoses."""


class DistillationError(HeroError):
    """Training input is unusable (no diagnoses, mismatched turns, empty actions...)."""


class NothingToTrain(DistillationError):
    """The input is valid but selects nothing to train on (e.g. no flagged turn)."""


class ProbeError(HeroError):
    """Trajectories cannot be probed (no diagnoses, or turns the policy cannot render)."""
