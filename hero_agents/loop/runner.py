"""``hero train``: the closed loop, one iteration after another, resumable at any point.

Before the first iteration the warm-started policy is evaluated on held-out tasks (iteration
0). Each iteration then runs, top to bottom (`TrainingRun.run_iteration`):

1. **rollout**: a group of ``rollout.group_size`` episodes for each of ``rollout.tasks`` train
   tasks (drawn from the seed and the iteration number, so every method of a comparison sees the
   same tasks), episodes in flight concurrently; each scored trajectory is appended as it ends;
2. **reflect**: the method's reflector writes one diagnosis per turn (the LLM or ``self``
   reflector for the HERO methods; the raw next observation for ``env-feedback``; a successful
   rollout of the same task for ``demo``; nothing for ``grpo``);
3. **train**: `HeroTrainer` distills the iteration's diagnosed trajectories into the LoRA
   adapter, continuing from the previous iteration's; the adapter is saved and renamed into
   place;
4. **sync**: the policy backend serves the new adapter (`PolicyBackend.sync`);
5. **eval**: every ``eval.every`` iterations (and after the last), greedy episodes on held-out
   tasks.

Trajectory ids are stable (iteration, task, sample), so a rerun of the same command after a
kill, ``kill -9`` included, skips what the run folder already holds and redoes only the phase
that was cut (a cut training restarts from the last saved adapter): nothing is lost or done
twice. See `hero_agents.loop.run_dir` for the folder's layout.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hero_agents.environment import Environment
from hero_agents.errors import ConfigError, DistillationError, HeroError
from hero_agents.loop.config import HERO_METHODS, TrainConfig, dump_config, load_train_config
from hero_agents.loop.iteration_metrics import (
    evaluation_figures,
    reflection_figures,
    rollout_figures,
    training_figures,
)
from hero_agents.loop.run_dir import RunDir, read_json, recorded, write_json_atomic
from hero_agents.reflection.base import Reflector
from hero_agents.storage import TrajectoryWriter
from hero_agents.trajectory import Trajectory

logger = logging.getLogger(__name__)

TRAIN_FIGURES = "hero_train.json"
"""The training figures, saved beside the adapter they describe."""

Progress = Callable[[str, int], Callable[[str], None]]
"""``progress(phase, total)`` returns ``advance(status)``, called once per finished item."""


def _no_progress(phase: str, total: int) -> Callable[[str], None]:
    return lambda status: None


def stable_seed(*parts: object) -> int:
    """A seed derived from `parts`, the same in every process (unlike ``hash``)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def iteration_tasks(train_ids: Sequence[str], *, seed: int, iteration: int, count: int) -> list:
    """The train tasks of one iteration: `count` distinct ones drawn from the seed and number."""
    if count > len(train_ids):
        raise ConfigError(
            f"rollout.tasks={count} but the environment has only {len(train_ids)} train tasks"
        )
    return random.Random(stable_seed(seed, iteration)).sample(list(train_ids), count)


def slot_id(kind: str, iteration: int, task_id: str, sample: int) -> str:
    """The stable id of one episode of a run."""
    return f"{kind}-{iteration:04d}-{task_id}-{sample}"


@dataclass
class EpisodeBatch:
    """What one rollout or eval phase produced."""

    trajectories: list[Trajectory]
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def run_episodes(
    env: Environment,
    backend: Any,
    *,
    kind: str,
    number: int,
    slots: list[tuple[str, int]],
    path: Path,
    temperature: float,
    max_turns: int,
    max_new_tokens: int,
    concurrency: int,
    seed: int,
    progress: Progress = _no_progress,
) -> EpisodeBatch:
    """Run the episodes of `slots` ((task, sample) pairs) that `path` does not hold yet,
    `concurrency` at once, appending each scored trajectory as it ends; returns them all in
    slot order (those read back from `path` included)."""
    from hero_agents.rollout import arun_episode

    started = time.perf_counter()
    ids = {slot_id(kind, number, task, sample): (task, sample) for task, sample in slots}
    done = {t.id: t for t in recorded(path) if t.id in ids}
    todo = [(i, slot) for i, slot in ids.items() if i not in done]
    policy = backend.policy(temperature=temperature, max_new_tokens=max_new_tokens)
    backend.reseed(stable_seed(seed, kind, number))
    failures: dict[str, str] = {}
    advance = progress(f"{kind} {number}", len(todo))

    async def run_all(writer: TrajectoryWriter) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(trajectory_id: str, task_id: str, sample: int) -> None:
            async with gate:
                try:
                    trajectory = await arun_episode(env, policy, task_id, max_turns=max_turns)
                except Exception as error:  # reported; a rerun tries it again
                    logger.warning("episode %s failed: %s", trajectory_id, error)
                    failures[trajectory_id] = f"{type(error).__name__}: {error}"
                    advance(f"[red]failed {trajectory_id}")
                    return
            trajectory.id = trajectory_id
            trajectory.metadata.update(
                {"run": kind, "iteration": number, "sample": sample, "seed": seed}
            )
            writer.write(trajectory)
            done[trajectory_id] = trajectory
            advance(f"reward {trajectory.reward}")

        await asyncio.gather(*(one(i, task, sample) for i, (task, sample) in todo))

    if todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        with TrajectoryWriter(path, fsync=True) as writer:
            asyncio.run(run_all(writer))
    ordered = [done[i] for i in ids if i in done]
    return EpisodeBatch(ordered, failures, time.perf_counter() - started)


def eval_slots(env: Environment, config: TrainConfig) -> list[tuple[str, int]]:
    """The held-out (task, sample) pairs a config evaluates on."""
    test = env.task_ids("test")
    count = config.eval.tasks
    if count is not None and count > len(test):
        raise ConfigError(f"eval.tasks={count} but {env.name} has only {len(test)} test tasks")
    tasks = test[:count] if count is not None else test
    return [(task, sample) for task in tasks for sample in range(config.eval.samples)]


def evaluate_policy(
    config: TrainConfig,
    env: Environment,
    backend: Any,
    out: Path,
    *,
    progress: Progress = _no_progress,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Evaluate the backend's current policy on held-out tasks (``out/eval.jsonl``)."""
    path = out / "eval.jsonl"
    if overwrite:
        path.unlink(missing_ok=True)
    batch = run_episodes(
        env,
        backend,
        kind="eval",
        number=0,
        slots=eval_slots(env, config),
        path=path,
        temperature=config.eval.temperature,
        max_turns=config.eval.max_turns,
        max_new_tokens=config.rollout.max_new_tokens,
        concurrency=config.rollout.concurrency,
        seed=config.seed,
        progress=progress,
    )
    figures = evaluation_figures(batch, env)
    figures["seconds"] = batch.seconds
    write_json_atomic(out / "eval.json", figures)
    return figures


class TrainingRun:
    """One ``hero train`` run in its folder; `run` carries it to the end of its budget."""

    def __init__(
        self,
        config: TrainConfig,
        root: Path,
        *,
        env: Environment,
        backend: Any,
        warm_model: Path,
        progress: Progress = _no_progress,
        on_iteration: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.dir = RunDir(root)
        self.env = env
        self.backend = backend
        self.warm_model = warm_model
        self.progress = progress
        self.on_iteration = on_iteration
        self._trainer_model: Any = None  # the PEFT model carried from one iteration to the next
        self._version = "warm-start"
        self._eval_slots = eval_slots(env, config)
        self._train_ids = env.task_ids("train")
        # Fail now, not at iteration 1, if the environment has too few train tasks.
        iteration_tasks(self._train_ids, seed=config.seed, iteration=1, count=config.rollout.tasks)

    # ---- the whole run

    def run(self) -> list[dict[str, Any]]:
        """Evaluate the starting policy, then run iterations until the budget is spent; returns
        every iteration's metrics (iteration 0 is the starting policy's evaluation)."""
        self._resume_policy()
        if not self.dir.finished(0):
            evaluation = self._evaluate(0)
            self._finish(0, {"eval": evaluation}, {"eval": evaluation["seconds"]})
        number = 1
        while self._budget_left(number):
            if not self.dir.finished(number):
                self.run_iteration(number)
            number += 1
        last = number - 1
        if last >= 1 and read_json(self.dir.iteration_metrics(last)).get("eval") is None:
            row = read_json(self.dir.iteration_metrics(last))
            row["eval"] = self._evaluate(last)
            self._finish(last, row, {**row["seconds"], "eval": row["eval"]["seconds"]})
        return self.dir.write_metrics_file()

    def _budget_left(self, number: int) -> bool:
        budget = self.config.budget
        if number > budget.iterations:
            return False
        if budget.rollout_turns is None or number == 1:
            return True
        previous = read_json(self.dir.iteration_metrics(number - 1))
        return previous["rollout_turns_total"] < budget.rollout_turns

    def _resume_policy(self) -> None:
        """After a restart: serve (and train on from) the newest adapter the folder holds."""
        first_open = next(n for n in range(1, 10**6) if not self.dir.finished(n))
        # An unfinished iteration's own adapter counts: it is saved only after its rollouts.
        latest = self.dir.latest_adapter(before=first_open + 1)
        if latest is None:
            return
        number, adapter = latest
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        logger.info("resuming from the adapter of iteration %d", number)
        base = AutoModelForCausalLM.from_pretrained(self.warm_model)
        self._trainer_model = PeftModel.from_pretrained(base, str(adapter), is_trainable=True)
        self._version = self.backend.sync(adapter, version=f"policy-v{number}")

    # ---- one iteration

    def run_iteration(self, number: int) -> dict[str, Any]:
        """Run (or finish) iteration `number`; returns its metrics."""
        self.dir.iteration(number).mkdir(parents=True, exist_ok=True)
        seconds: dict[str, float] = {}
        batch = self._rollouts(number)
        seconds["rollout"] = batch.seconds
        row: dict[str, Any] = {"rollout": rollout_figures(batch, self.env)}
        if batch.failures:
            row["rollout"]["failures"] = batch.failures

        started = time.perf_counter()
        diagnosed, failed = self._reflect(number, batch.trajectories)
        seconds["reflect"] = time.perf_counter() - started
        row["reflect"] = reflection_figures(diagnosed, failed, self._reflector_name())

        started = time.perf_counter()
        row["train"] = self._train(number, diagnosed)
        seconds["train"] = time.perf_counter() - started

        started = time.perf_counter()
        adapter = self.dir.adapter(number)
        if adapter.is_dir():
            self._version = self.backend.sync(
                adapter, version=f"policy-v{number}", reference_model=self._trainer_model
            )
        seconds["sync"] = time.perf_counter() - started

        row["eval"] = None
        if number % self.config.eval.every == 0:
            started = time.perf_counter()
            row["eval"] = self._evaluate(number)
            seconds["eval"] = time.perf_counter() - started
        return self._finish(number, row, seconds)

    def _finish(self, number: int, row: dict[str, Any], seconds: dict[str, float]) -> dict:
        """Write the iteration's metrics (which marks it finished) and rebuild metrics.jsonl."""
        if "rollout_turns_total" not in row:
            previous = 0
            if number > 1:
                previous = read_json(self.dir.iteration_metrics(number - 1))["rollout_turns_total"]
            row["rollout_turns_total"] = previous + row.get("rollout", {}).get("turns", 0)
        row = {
            **row,
            "iteration": number,
            "method": self.config.method,
            "seed": self.config.seed,
            "policy_version": self._version,
            "seconds": seconds,
        }
        write_json_atomic(self.dir.iteration_metrics(number), row)
        self.dir.write_metrics_file()
        if self.on_iteration is not None:
            self.on_iteration(row)
        return row

    # ---- phases

    def _episodes(
        self,
        kind: str,
        number: int,
        slots: list[tuple[str, int]],
        path: Path,
        *,
        temperature: float,
        max_turns: int,
    ) -> EpisodeBatch:
        return run_episodes(
            self.env,
            self.backend,
            kind=kind,
            number=number,
            slots=slots,
            path=path,
            temperature=temperature,
            max_turns=max_turns,
            max_new_tokens=self.config.rollout.max_new_tokens,
            concurrency=self.config.rollout.concurrency,
            seed=self.config.seed,
            progress=self.progress,
        )

    def _rollouts(self, number: int) -> EpisodeBatch:
        settings = self.config.rollout
        tasks = iteration_tasks(
            self._train_ids, seed=self.config.seed, iteration=number, count=settings.tasks
        )
        slots = [(task, sample) for task in tasks for sample in range(settings.group_size)]
        return self._episodes(
            "rollout",
            number,
            slots,
            self.dir.rollouts(number),
            temperature=settings.temperature,
            max_turns=settings.max_turns,
        )

    def _evaluate(self, number: int) -> dict[str, Any]:
        settings = self.config.eval
        batch = self._episodes(
            "eval",
            number,
            self._eval_slots,
            self.dir.eval(number),
            temperature=settings.temperature,
            max_turns=settings.max_turns,
        )
        figures = evaluation_figures(batch, self.env)
        figures["seconds"] = batch.seconds
        return figures

    def _reflector_name(self) -> str | None:
        method = self.config.method
        if method == "grpo":
            return None
        if method in HERO_METHODS:
            return self.config.reflector
        return method

    def _reflector(self, number: int) -> Reflector:
        from hero_agents.reflection.baselines import DemoReflector, EnvFeedbackReflector

        method = self.config.method
        if method == "env-feedback":
            return EnvFeedbackReflector()
        if method == "demo":
            pool = [t for n in range(1, number + 1) for t in recorded(self.dir.rollouts(n))]
            return DemoReflector(pool)
        if self.config.reflector == "self":  # the policy being trained, current weights
            return self.backend.self_reflector(max_concurrency=4)
        from hero_agents.adapters.reflectors import load_reflector

        return load_reflector(self.config.reflector, max_concurrency=8)

    def _reflect(
        self, number: int, trajectories: list[Trajectory]
    ) -> tuple[list[Trajectory], dict[str, str]]:
        """Diagnose the iteration's rollouts (resuming); returns (diagnosed, failed ids)."""
        if self.config.method == "grpo":
            return trajectories, {}
        import json

        out, failures_path = self.dir.diagnosed(number), self.dir.reflect_failures(number)
        wanted = {t.id for t in trajectories}
        diagnosed = {t.id: t for t in recorded(out) if t.id in wanted}
        failed: dict[str, str] = {}
        if failures_path.exists():
            for line in failures_path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    entry = json.loads(line)
                    failed[entry["id"]] = entry["error"]
        todo = [t for t in trajectories if t.id not in diagnosed and t.id not in failed]
        if todo:
            advance = self.progress(f"reflect {number}", len(todo))
            with self._reflector(number) as reflector, TrajectoryWriter(out, fsync=True) as writer:

                async def run_all() -> None:
                    async for result in reflector.astream(todo):
                        if result.ok:
                            writer.write(result.trajectory)
                            diagnosed[result.trajectory.id] = result.trajectory
                            advance("diagnosed")
                        else:
                            failed[result.trajectory.id] = result.error or "unknown error"
                            with failures_path.open("a", encoding="utf-8") as handle:
                                record = {"id": result.trajectory.id, "error": result.error}
                                handle.write(json.dumps(record) + "\n")
                            advance(f"[red]not diagnosed {result.trajectory.id}")

                asyncio.run(run_all())
        ordered = [diagnosed[t.id] for t in trajectories if t.id in diagnosed]
        return ordered, failed

    def _train(self, number: int, diagnosed: list[Trajectory]) -> dict[str, Any]:
        """Distill the iteration's trajectories into the adapter (resuming); returns figures.

        The figures are saved inside the adapter folder, so both appear in one rename.
        """
        skipped = self.dir.iteration(number) / "train-skipped.json"
        for saved in (skipped, self.dir.adapter(number) / TRAIN_FIGURES):
            if saved.is_file():
                return read_json(saved)
        data = diagnosed
        if self.config.method == "grpo":
            data = _with_reward_contrast(diagnosed)
        trainer = self._trainer(number, data) if data else None
        if trainer is None:
            reason = (
                "no flagged turn to distill"
                if data
                else "no trajectory to train on (see the rollout and reflect figures)"
            )
            logger.warning("iteration %d trains nothing: %s", number, reason)
            figures = {"skipped": reason}
            write_json_atomic(skipped, figures)
            self._carry_adapter(number)
            return figures
        result = trainer.train()
        self._trainer_model = trainer.model
        figures = training_figures(trainer, result)

        def save(folder: Path) -> None:
            trainer.save_policy(folder)
            write_json_atomic(folder / TRAIN_FIGURES, figures)

        self.dir.save_adapter(number, save)
        return figures

    def _carry_adapter(self, number: int) -> None:
        """An iteration that trained nothing keeps the previous iteration's adapter."""
        latest = self.dir.latest_adapter(before=number)
        if latest is not None:
            ignore = shutil.ignore_patterns(TRAIN_FIGURES)
            self.dir.save_adapter(
                number, lambda folder: shutil.copytree(latest[1], folder, ignore=ignore)
            )

    def _trainer(self, number: int, data: list[Trajectory]) -> Any:
        import torch

        from hero_agents.distill.config import HeroConfig
        from hero_agents.distill.trainer import HeroTrainer

        settings = self.config.train
        method = self.config.method
        on_gpu = torch.cuda.is_available()
        options: dict[str, Any] = {
            "output_dir": str(self.dir.iteration(number) / "trainer"),
            "mode": "hero" if method == "hero-targeted" else method,
            "distillation_mode": settings.loss,
            "teacher_model_kind": settings.teacher,
            "learning_rate": settings.learning_rate,
            "num_train_epochs": settings.epochs,
            "per_device_train_batch_size": 1,
            "gradient_accumulation_steps": min(settings.batch_size, len(data)),
            "lora_r": settings.lora_r,
            "lora_alpha": 2 * settings.lora_r,
            "seed": stable_seed(self.config.seed, "train", number),
            "use_cpu": not on_gpu,
            "bf16": on_gpu and torch.cuda.is_bf16_supported(),
            "gradient_checkpointing": False,
            "save_strategy": "no",
            "logging_steps": 1,
            "disable_tqdm": True,
            "report_to": list(self.config.report_to) or "none",
        }
        if settings.loss != "sampled_token":
            options["distillation_alpha"] = 0.5
        if settings.loss == "topk_logits":
            options["distillation_topk"] = 100
        if method == "hero-targeted":
            options["distill_turns"] = "flagged"
            options["flagged_valid_share"] = settings.targeted_valid_share
        options.update(settings.options)
        try:
            args = HeroConfig(**options)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"train.options: {error}") from None
        model = self._trainer_model if self._trainer_model is not None else str(self.warm_model)
        try:
            trainer = HeroTrainer(model, args=args, train_dataset=data)
        except DistillationError as error:
            if method == "hero-targeted" and "nothing to train on" in str(error):
                return None
            raise
        quiet_trainer(trainer, self.progress(f"train {number}", trainer_steps(trainer)))
        return trainer


def trainer_steps(trainer: Any) -> int:
    """Optimizer steps `trainer.train()` will take."""
    import math

    args = trainer.args
    if args.max_steps > 0:
        return args.max_steps
    per_epoch = math.ceil(len(trainer.train_dataset) / args.gradient_accumulation_steps)
    return math.ceil(per_epoch * args.num_train_epochs)


def quiet_trainer(trainer: Any, advance: Callable[[str], None]) -> None:
    """Replace a trainer's printed logs with one progress tick per optimizer step."""
    from transformers import PrinterCallback, TrainerCallback

    class Ticks(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                advance(f"loss {logs['loss']:.4f}")

    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(Ticks())


def _with_reward_contrast(trajectories: list[Trajectory]) -> list[Trajectory]:
    """GRPO's data: the trajectories of tasks whose group has different rewards (the others
    have advantage 0 and no gradient, so training on them would only cost time)."""
    rewards: dict[str | None, set[float]] = {}
    for trajectory in trajectories:
        rewards.setdefault(trajectory.task_id, set()).add(trajectory.reward or 0.0)
    return [t for t in trajectories if len(rewards[t.task_id]) > 1]


def prepare_run(config: TrainConfig, root: Path, *, overwrite: bool = False) -> None:
    """Check the run folder before any work: a new folder gets the config's snapshot; an
    existing one must have been started with the same settings (a rerun resumes it)."""
    run_dir = RunDir(root)
    if run_dir.config.is_file() and not overwrite:
        started = load_train_config(run_dir.config)
        if started != config:
            raise ConfigError(
                f"{root} was started with other settings ({run_dir.config}); rerun with the "
                "same config to resume, or pass --overwrite to start over"
            )
        return
    if overwrite and root.exists():
        shutil.rmtree(root)
    elif root.exists() and any(root.iterdir()):
        raise HeroError(f"{root} exists and is not a run folder: choose another --out")
    root.mkdir(parents=True, exist_ok=True)
    dump_config(config, run_dir.config)
