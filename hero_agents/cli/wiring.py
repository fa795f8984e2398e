"""The composition root: the one place that picks concrete adapters for the commands.

Environments, policy backends, model folders, reflector clients and user simulators are built
here from the user's names and specs, then handed to the core (`hero_agents.loop`,
`hero_agents.phases`) as the interfaces it knows. Everything here fails fast, before any long
work, with an error that names the setting.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from rich.text import Text

from hero_agents.backend import PolicyBackend
from hero_agents.cli.console import console, escape
from hero_agents.device import resolve_device
from hero_agents.environment import Environment
from hero_agents.errors import ConfigError
from hero_agents.loop.config import TrainConfig
from hero_agents.loop.reflectors import LLMReflector
from hero_agents.loop.session import Session, check_against_env
from hero_agents.methods import METHODS
from hero_agents.phases import Progress, no_progress
from hero_agents.reflection.base import Reflector
from hero_agents.reflection.spec import ReflectorSpec


def environment(name: str, **options: Any) -> Environment:
    """The environment called `name` (`hero_agents.adapters.envs.make_env`)."""
    from hero_agents.adapters.envs import make_env

    return make_env(name, **options)


def model_folder(model: str) -> Path:
    """The transformers folder ``--model`` names (``default`` is converted on first use)."""
    from hero_agents.adapters.policy.registry import model_folder as folder

    return folder(model)


def model_identity(model: str, folder: Path) -> str:
    """What names a base model in cache keys: the default model's name and version, or a
    folder's path and its weights' names, sizes and dates."""
    if model == "default":
        from hero_agents.adapters.policy.default_model import DEFAULT_MODEL_NAME

        return f"{DEFAULT_MODEL_NAME}:{folder.name}"
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    stamp = [(w.name, w.stat().st_size, int(w.stat().st_mtime)) for w in weights]
    return f"{folder.resolve()}:{stamp}"


def check_report_to(config: TrainConfig) -> None:
    """The packages a config's ``report_to`` needs must be installed."""
    for target in config.report_to:
        if importlib.util.find_spec(target) is None:
            raise ConfigError(
                f"report_to: {target!r} needs the {target!r} package: pip install {target}"
            )


def check_reflector(config: TrainConfig) -> None:
    """An API reflector must be usable (its key set) before the run spends an hour on rollouts."""
    if not METHODS[config.method].uses_run_reflector:
        return
    spec = config.reflector.inner if config.reflector.kind == "grounded" else config.reflector
    if spec is None or spec.model is None or spec.model.kind == "self" or spec.model.in_process:
        return
    from hero_agents.adapters.reflectors import load_reflector

    load_reflector(spec).close()  # raises ConfigError naming the missing key


def check_train_options(config: TrainConfig) -> None:
    """``train.options`` must name `HeroConfig` fields with valid values (checked now, not after
    the warm start and the first rollouts)."""
    import tempfile

    from hero_agents.phases.distill import DistillSettings, hero_config

    settings = config.train
    with tempfile.TemporaryDirectory() as scratch:
        try:
            hero_config(
                DistillSettings(
                    signal=METHODS[config.method].signal,
                    loss=settings.loss,
                    teacher=settings.teacher,
                    learning_rate=settings.learning_rate,
                    lora_r=settings.lora_r,
                    options=dict(settings.options),
                ),
                output_dir=Path(scratch),
            )
        except ConfigError as error:
            raise ConfigError(f"train.options: {error}") from None


def check_config(config: TrainConfig) -> Environment:
    """Every check of a run config that needs the outside world; returns its environment."""
    resolve_device(config.device)  # cuda asked for without a GPU: one clear line, now
    check_report_to(config)
    model_folder(config.model)
    if config.warmup.model is not None:
        from hero_agents.adapters.policy.registry import check_model_folder

        check_model_folder(config.warmup.model, name="warmup.model")
    check_train_options(config)
    check_reflector(config)
    env = environment(config.env)
    check_against_env(config, env)
    return env


def open_session(
    config: TrainConfig, *, env: Environment | None = None, progress: Progress = no_progress
) -> Session:
    """The environment and the warm-started model (trained now, or taken from the cache)."""
    from transformers.utils import logging as transformers_logging

    from hero_agents.loop.warmup import warm_start_folder

    env = env if env is not None else check_config(config)
    transformers_logging.disable_progress_bar()  # "Loading weights" bars; ours show the phases
    if config.warmup.model is not None:
        folder = config.warmup.model
        return Session(env, folder, {"model": str(folder), "warm_start": "given (warmup.model)"})
    settings = config.warmup
    base = model_folder(config.model)
    folder, info = warm_start_folder(
        base,
        model_identity(config.model, base),
        env,
        steps=settings.steps,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
        demonstrations=settings.demonstrations,
        seed=settings.seed,
        device=config.device,
        progress=progress,
    )
    if info.get("cached"):
        console.print(f"warm start: {escape(str(folder))} (cached)")
    return Session(env, folder, info)


def open_backend(config: TrainConfig, model: Path, run_dir: Path) -> PolicyBackend:
    """The policy backend a config names, serving `model`."""
    from hero_agents.adapters.policy.backends import InProcessBackend, VLLMBackend

    if config.backend == "vllm":
        with console.status(Text(f"starting vLLM for {model} (log in {run_dir})")):
            return VLLMBackend(
                model,
                run_dir=run_dir,
                max_model_len=config.vllm_max_model_len,
                max_lora_rank=config.train.lora_r,
            )
    return InProcessBackend(model, max_batch=config.rollout.concurrency, device=config.device)


def llm_reflectors(backend: PolicyBackend) -> LLMReflector:
    """How the loop builds a model-backed reflector: ``self`` reads with the backend's current
    weights; anything else is an API or server client. Both keep a reply cache, so calls in
    flight at an interruption cost nothing on resume (``self``'s is keyed by the run's id and
    the policy version, so it never answers for other weights)."""
    from hero_agents.adapters.reflectors import load_reflector
    from hero_agents.loop.run_dir import RunDir
    from hero_agents.reflection.cache import default_cache_dir

    def build(spec: ReflectorSpec, run_dir: Path) -> Reflector:
        if spec.kind == "self":
            return backend.self_reflector(
                max_concurrency=4,
                cache_dir=default_cache_dir(),
                cache_identity=f"run:{RunDir(run_dir).run_id()}",
            )
        options = {"max_concurrency": 8, "cache_dir": default_cache_dir()}
        if spec.model is not None and spec.model.in_process:  # another model, read in process
            options = {"max_concurrency": 1}
        return load_reflector(spec, **options)

    return build
