"""Hindsight reflection: one diagnosis per turn, from an LLM, from what the trace proves
(`GroundedReflector`, alone or over an LLM), from the baselines' feedback, or from a
benchmark's reference solution (privileged).

LLM reflectors (OpenAI-compatible APIs, the policy itself) live in
`hero_agents.adapters.reflectors`; `load_reflector(spec)` there builds any kind from a spec.
"""

from hero_agents.reflection.base import (
    ReflectionResult,
    ReflectionSummary,
    ReflectionUsage,
    Reflector,
)
from hero_agents.reflection.baselines import DemoReflector, EnvFeedbackReflector
from hero_agents.reflection.grounded import Fact, Finding, GroundedReflector, prove_turn
from hero_agents.reflection.redacting import RedactingReflector
from hero_agents.reflection.reference import (
    ReferenceReflector,
    reference_demo_reflector,
    reflector_label,
)
from hero_agents.reflection.spec import SPEC_FORMS, ReflectorSpec, parse_reflector_spec

__all__ = [
    "SPEC_FORMS",
    "DemoReflector",
    "EnvFeedbackReflector",
    "Fact",
    "Finding",
    "GroundedReflector",
    "RedactingReflector",
    "ReferenceReflector",
    "ReflectionResult",
    "ReflectionSummary",
    "ReflectionUsage",
    "Reflector",
    "ReflectorSpec",
    "parse_reflector_spec",
    "prove_turn",
    "reference_demo_reflector",
    "reflector_label",
]
