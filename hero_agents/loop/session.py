"""Setting a training run up from its config: environment, warm start, policy backend.

Shared by ``hero train``, ``hero warmup``, ``hero demo`` and ``hero compare``; everything here
fails fast, before any long work, with an error that names the setting.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hero_agents.console import console, progress_bar
from hero_agents.environment import Environment
from hero_agents.errors import ConfigError
from hero_agents.loop.config import TrainConfig
from hero_agents.loop.runner import Progress


@dataclass
class Session:
    """What a run needs, built from its config."""

    env: Environment
    warm_model: Path
    warm_start: dict[str, Any]


def check_report_to(config: TrainConfig) -> None:
    """The packages a config's ``report_to`` needs must be installed."""
    import importlib.util

    packages = {"tensorboard": "tensorboard", "wandb": "wandb"}
    for target in config.report_to:
        if importlib.util.find_spec(packages[target]) is None:
            raise ConfigError(
                f"report_to: {target!r} needs the {packages[target]!r} package: "
                f"pip install {packages[target]}"
            )


def check_reflector(config: TrainConfig) -> None:
    """An API reflector must be usable (its key set) before the run spends an hour on rollouts."""
    from hero_agents.loop.config import HERO_METHODS

    if config.method not in HERO_METHODS or config.reflector.startswith("self"):
        return
    from hero_agents.adapters.reflectors import load_reflector

    load_reflector(config.reflector).close()  # raises ConfigError naming the missing key


def check_against_env(config: TrainConfig, env: Environment) -> None:
    """Task counts the config asks for must exist in the environment's splits."""
    from hero_agents.loop.runner import eval_slots

    train = env.task_ids("train")
    if config.rollout.tasks > len(train):
        raise ConfigError(
            f"rollout.tasks={config.rollout.tasks} but {env.name} has only {len(train)} train tasks"
        )
    eval_slots(env, config)


def open_session(config: TrainConfig, *, progress: bool = True) -> Session:
    """The environment and the warm-started model (trained now, or taken from the cache)."""
    from transformers.utils import logging as transformers_logging

    from hero_agents.adapters.envs import make_env
    from hero_agents.loop.warmup import warm_start_folder

    check_report_to(config)
    check_reflector(config)
    transformers_logging.disable_progress_bar()  # "Loading weights" bars; ours show the phases
    env = make_env(config.env)
    check_against_env(config, env)
    if config.warmup.model is not None:
        folder = config.warmup.model
        return Session(env, folder, {"model": str(folder), "warm_start": "given (warmup.model)"})
    settings = config.warmup
    folder, info = warm_start_folder(
        config.model,
        env,
        steps=settings.steps,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        demonstrations=settings.demonstrations,
        seed=settings.seed,
        progress=progress,
    )
    if info.get("cached"):
        console.print(f"warm start: {folder} (cached)")
    return Session(env, folder, info)


def open_backend(config: TrainConfig, model: Path, run_dir: Path) -> Any:
    """The policy backend a config names, serving `model`."""
    from hero_agents.adapters.policy.backends import InProcessBackend, VLLMBackend

    if config.backend == "vllm":
        with console.status(f"starting vLLM for {model} (log in {run_dir})"):
            return VLLMBackend(
                model,
                run_dir=run_dir,
                max_model_len=config.vllm_max_model_len,
                max_lora_rank=config.train.lora_r,
            )
    return InProcessBackend(model, max_batch=config.rollout.concurrency)


@contextlib.contextmanager
def phase_progress() -> Iterator[Progress]:
    """A rich progress bar per phase (rollout, reflect, eval) of a run."""
    with progress_bar() as bars:

        def start(phase: str, total: int) -> Any:
            task = bars.add_task(phase, total=total, status="")
            return lambda status: bars.update(task, advance=1, status=status)

        yield start


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
