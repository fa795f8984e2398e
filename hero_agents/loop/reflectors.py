"""Which reflector an iteration of the loop uses: its method's (`hero_agents.methods`).

The baselines' reflectors are built here; a model-backed reflector (``self``, an API model)
comes from the ``llm`` factory the command line passes in, which knows the policy backend and
the API clients. The core never builds one itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from hero_agents.environment import DemonstrationSource, Environment
from hero_agents.errors import ConfigError
from hero_agents.loop.config import TrainConfig
from hero_agents.loop.runner import ReflectorFactory
from hero_agents.methods import METHODS
from hero_agents.reflection.base import Reflector
from hero_agents.reflection.baselines import DemoReflector, EnvFeedbackReflector
from hero_agents.trajectory import Trajectory

LLMReflector = Callable[[str, Path], Reflector]
"""``llm(spec, run_dir)``: the model-backed reflector a spec names (``self`` or an API model)
for the run in `run_dir`."""


def reflector_factory(
    config: TrainConfig, env: Environment, llm: LLMReflector, run_dir: Path
) -> ReflectorFactory:
    """The run's `ReflectorFactory`; fails now if the method's reflector cannot be built."""
    method = METHODS[config.method]
    reference_demos: list[Trajectory] = []
    if method.demonstrations == "reference":
        if not isinstance(env, DemonstrationSource):
            raise ConfigError(
                f"method {method.name!r} needs reference demonstrations: {env.name} has none"
            )
        reference_demos = env.demonstrations(env.task_ids("train")).trajectories

    def make(number: int, rollouts: Sequence[Trajectory]) -> Reflector:
        if method.reflection == "config":
            return llm(config.reflector, run_dir)
        if method.reflection == "env-feedback":
            return EnvFeedbackReflector()
        if method.reflection == "demo":
            pool = reference_demos if method.demonstrations == "reference" else list(rollouts)
            return DemoReflector(pool)
        raise ConfigError(f"method {method.name!r} has no reflector")

    return make
