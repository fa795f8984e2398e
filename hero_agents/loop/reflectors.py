"""Which reflector an iteration of the loop uses: its method's (`hero_agents.methods`).

Reflectors that need no model (the baselines' feedback, ``grounded``, ``reference``) are built
here; a model-backed one (``self``, an API model, a model folder) comes from the ``llm``
factory the command line passes in, which knows the policy backend and the API clients. The
core never builds one itself.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from hero_agents.environment import DemonstrationSource, Environment
from hero_agents.errors import ConfigError
from hero_agents.loop.config import TrainConfig
from hero_agents.loop.runner import ReflectorFactory
from hero_agents.methods import METHODS
from hero_agents.reflection.base import Reflector
from hero_agents.reflection.baselines import DemoReflector, EnvFeedbackReflector
from hero_agents.reflection.grounded import GroundedReflector
from hero_agents.reflection.reference import ReferenceReflector, reference_demo_reflector
from hero_agents.reflection.spec import ReflectorSpec, parse_reflector_spec
from hero_agents.trajectory import Trajectory

LLMReflector = Callable[[ReflectorSpec, Path], Reflector]
"""``llm(spec, run_dir)``: the model-backed reflector a spec names (``self``, an API model, a
model folder) for the run in `run_dir`."""


def build_reflector(
    spec: ReflectorSpec,
    *,
    env: Environment,
    llm: LLMReflector,
    run_dir: Path,
    end_of_turn_ids: Collection[int] = (),
) -> Reflector:
    """The reflector `spec` names, for one iteration of the run in `run_dir`."""
    if spec.kind == "grounded":
        inner = None
        if spec.inner is not None:
            inner = build_reflector(
                spec.inner, env=env, llm=llm, run_dir=run_dir, end_of_turn_ids=end_of_turn_ids
            )
        return GroundedReflector(inner, end_of_turn_ids=end_of_turn_ids)
    if spec.kind == "reference":
        return ReferenceReflector(env)
    if spec.is_model:
        return llm(spec, run_dir)
    raise ConfigError(f"{spec} is not a reflector of the training loop")


def reflector_factory(
    config: TrainConfig,
    env: Environment,
    llm: LLMReflector,
    run_dir: Path,
    *,
    end_of_turn_ids: Collection[int] = (),
) -> ReflectorFactory:
    """The run's `ReflectorFactory`; fails now if the method's reflector cannot be built."""
    method = METHODS[config.method]
    if method.demonstrations == "reference" and not isinstance(env, DemonstrationSource):
        raise ConfigError(
            f"method {method.name!r} needs reference demonstrations: {env.name} has none"
        )
    spec = config.reflector if method.uses_run_reflector else None
    if method.reflection == "reference":
        spec = parse_reflector_spec("reference")
    if spec is not None and spec.privileged:
        ReferenceReflector(env)  # raises, naming the environment, if it has no references
    reference_demos: DemoReflector | None = None

    def make(number: int, rollouts: Sequence[Trajectory]) -> Reflector:
        nonlocal reference_demos
        if method.reflection == "env-feedback":
            return EnvFeedbackReflector()
        if method.reflection == "demo" and method.demonstrations == "reference":
            if reference_demos is None:
                reference_demos = reference_demo_reflector(env, env.task_ids("train"))
            return reference_demos
        if method.reflection == "demo":
            return DemoReflector(list(rollouts))
        if spec is None:
            raise ConfigError(f"method {method.name!r} has no reflector")
        return build_reflector(
            spec, env=env, llm=llm, run_dir=run_dir, end_of_turn_ids=end_of_turn_ids
        )

    return make
