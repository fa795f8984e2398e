"""Setting a run folder up (or resuming it) and carrying the run to the end of its budget.

`prepare_run` checks the folder before any work: a new folder gets the config's snapshot; an
existing one must have been started with the same settings, except that raising
``budget.iterations`` (or ``budget.rollout_turns``) extends a run, finished or not, and that
``device`` may change (a run started on a CPU resumes on a GPU). `run_training`
then runs `TrainingRun` with what the command line built (`Session`, backend, reflectors).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hero_agents.backend import PolicyBackend
from hero_agents.errors import ConfigError
from hero_agents.loop.config import TrainConfig, dump_config, load_train_config
from hero_agents.loop.reflectors import LLMReflector, reflector_factory
from hero_agents.loop.run_dir import RUN_FOLDER, RunDir
from hero_agents.loop.runner import TrainingRun
from hero_agents.loop.session import Session, run_log
from hero_agents.loop.tracking import MetricsTracker
from hero_agents.outputs import claim_folder
from hero_agents.phases import Progress, no_progress
from hero_agents.storage import write_json_atomic

logger = logging.getLogger(__name__)

EXTENSIBLE = ("budget.iterations", "budget.rollout_turns")
"""Settings a rerun may raise to extend a run."""

MACHINE_SETTINGS = ("device",)
"""Settings of the machine, not of the run: a rerun may change them (resume on a GPU)."""


def changed_settings(old: Any, new: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ between two config dumps -> (old, new)."""
    if isinstance(old, dict) and isinstance(new, dict):
        changed: dict[str, tuple[Any, Any]] = {}
        for key in sorted(set(old) | set(new)):
            changed |= changed_settings(old.get(key), new.get(key), f"{prefix}{key}.")
        return changed
    return {} if old == new else {prefix.rstrip("."): (old, new)}


def _allowed(key: str, old: Any, new: Any) -> bool:
    if key in MACHINE_SETTINGS:
        return True
    return key in EXTENSIBLE and (old is None or (new is not None and new >= old))


def prepare_run(config: TrainConfig, root: Path, *, overwrite: bool = False) -> bool:
    """Make `root` the run folder of `config`; returns True when it resumes an earlier run.

    A changed setting is refused, naming each key (old and new value), except a raised budget.
    """
    run_dir = RunDir(root)
    if claim_folder(root, RUN_FOLDER, overwrite=overwrite):
        started = load_train_config(run_dir.config)
        changed = changed_settings(started.model_dump(mode="json"), config.model_dump(mode="json"))
        refused = {k: v for k, v in changed.items() if not _allowed(k, *v)}
        if refused:
            lines = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in refused.items())
            raise ConfigError(
                f"{root} was started with other settings ({lines}); rerun with the same config "
                "to resume (raising budget.iterations extends a run), or pass --overwrite to "
                "start over"
            )
        if changed:
            dump_config(config, run_dir.config)
        return True
    dump_config(config, run_dir.config)
    run_dir.run_id()
    return False


def run_training(
    config: TrainConfig,
    root: Path,
    *,
    session: Session,
    backend: PolicyBackend,
    llm_reflector: LLMReflector,
    progress: Progress = no_progress,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Carry the run in `root` (set up by `prepare_run`) to the end of its budget; returns
    every iteration's metrics row."""
    run_dir = RunDir(root)
    with run_log(run_dir.log):
        logger.info("the policy runs %s", backend.where)
        run_dir.record(policy=backend.where)
        write_json_atomic(run_dir.warmup, session.warm_start)
        tracker = MetricsTracker(config.report_to, root, config.model_dump(mode="json"))

        def finished(row: dict[str, Any]) -> None:
            tracker.log(row)
            if on_iteration is not None:
                on_iteration(row)

        try:
            run = TrainingRun(
                config,
                root,
                env=session.env,
                backend=backend,
                warm_model=session.warm_model,
                reflector=reflector_factory(config, session.env, llm_reflector, root),
                progress=progress,
                on_iteration=finished,
            )
            return run.run()
        finally:
            tracker.close()
