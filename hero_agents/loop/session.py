"""What a training run is given from outside: its environment and warm-started model
(`Session`), and where its log goes.

The command line (`hero_agents.cli.wiring`) builds the session from a config; ``hero compare``
shares one session between its runs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hero_agents.environment import Environment
from hero_agents.errors import ConfigError
from hero_agents.loop.config import TrainConfig


@dataclass
class Session:
    """What a run needs, built from its config."""

    env: Environment
    warm_model: Path
    warm_start: dict[str, Any]


def check_against_env(config: TrainConfig, env: Environment) -> None:
    """Task counts the config asks for must exist in the environment's splits."""
    from hero_agents.loop.runner import eval_slots

    train = env.task_ids("train")
    if config.rollout.tasks > len(train):
        raise ConfigError(
            f"rollout.tasks={config.rollout.tasks} but {env.name} has only {len(train)} train tasks"
        )
    if config.warmup.demonstrations is not None and config.warmup.demonstrations > len(train):
        raise ConfigError(
            f"warmup.demonstrations={config.warmup.demonstrations} but {env.name} has only "
            f"{len(train)} train tasks"
        )
    eval_slots(env, config)


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Send hero_agents' log records (INFO and up) to the run's log file too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("hero_agents")
    previous = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()
