"""``hero train``: the closed loop, one iteration after another, resumable at any point.

Before the first iteration the warm-started policy is evaluated on held-out tasks (iteration
0). Each iteration then runs the phases of `hero_agents.phases`, top to bottom
(`TrainingRun.run_iteration`):

1. **rollout**: a group of ``rollout.group_size`` episodes for each of ``rollout.tasks`` train
   tasks (drawn from the seed and the iteration number, so every method of a comparison sees the
   same tasks), episodes in flight concurrently;
2. **reflect**: the method's reflector (`hero_agents.methods`) writes one diagnosis per turn;
3. **train**: `HeroTrainer` distills the iteration's diagnosed trajectories into the LoRA
   adapter, continuing from the previous iteration's;
4. **sync**: the policy backend serves the new adapter (`PolicyBackend.sync`);
5. **eval**: every ``eval.every`` iterations (and after the last), held-out episodes.

This module only orders the phases and records their figures; what a phase does, and how it
resumes after a kill (``kill -9`` included), is the phase's own (see `hero_agents.phases`).
See `hero_agents.loop.run_dir` for the folder's layout.
"""

from __future__ import annotations

import hashlib
import logging
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hero_agents.backend import PolicyBackend
from hero_agents.device import resolve_device
from hero_agents.environment import DemonstrationSource, Environment
from hero_agents.errors import ConfigError, NothingToTrain
from hero_agents.loop.config import TrainConfig
from hero_agents.loop.optimizer import LearningRateSchedule, RunOptimizer
from hero_agents.loop.run_dir import PhaseClock, RunDir
from hero_agents.methods import METHODS
from hero_agents.metrics import episode_figures
from hero_agents.phases import Progress, no_progress
from hero_agents.phases.distill import DistillSettings, distill, finished_figures, hero_config
from hero_agents.phases.evaluate import evaluate
from hero_agents.phases.reflect import diagnosed_in_order, read_failures, reflect_trajectories
from hero_agents.phases.rollout import EpisodeSlot, run_episodes, task_slots
from hero_agents.reflection.base import ReflectionSummary, Reflector
from hero_agents.reflection.reference import reflector_label
from hero_agents.scoring import ReferenceScorer
from hero_agents.storage import read_json, read_whole_lines, write_json_atomic
from hero_agents.trajectory import Trajectory

logger = logging.getLogger(__name__)

ReflectorFactory = Callable[[int, Sequence[Trajectory]], Reflector]
"""``make(iteration, rollouts_so_far)``: the reflector of one iteration (see
`hero_agents.loop.reflectors`)."""


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


def eval_tasks(env: Environment, config: TrainConfig) -> list[str]:
    """The held-out tasks a config evaluates on (``eval.split``)."""
    split = config.eval.split
    if split == "train":
        raise ConfigError("eval.split: 'train' is not held out; use test (or test-templates)")
    test = env.task_ids(split)
    count = config.eval.tasks
    if count is not None and count > len(test):
        raise ConfigError(f"eval.tasks={count} but {env.name} has only {len(test)} {split} tasks")
    return test[:count] if count is not None else test


def eval_slots(
    env: Environment,
    config: TrainConfig,
    number: int = 0,
    *,
    suffix: str = "",
    samples: int | None = None,
) -> list[EpisodeSlot]:
    """The held-out episodes a config evaluates on (after iteration `number`)."""
    count = config.eval.samples if samples is None else samples
    return task_slots(f"eval{suffix}-{number:04d}", eval_tasks(env, config), count)


def evaluate_policy(
    config: TrainConfig,
    env: Environment,
    backend: PolicyBackend,
    out: Path,
    *,
    number: int = 0,
    progress: Progress = no_progress,
    reference: Callable[[], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Evaluate the backend's current policy on held-out tasks into ``out`` (a JSONL file,
    resumed if it holds some episodes); returns the figures. With ``eval.sampled`` = k, k more
    episodes per task at ``eval.sampled_temperature`` go to ``out``'s ``-sampled`` sibling and
    their figures under ``"sampled"``; `reference()` scores the held-out reference actions
    (``"reference_logprob"``)."""
    settings = config.eval
    passes = [("", settings.temperature, config.eval.samples)]
    if settings.sampled:
        passes.append(("-sampled", settings.sampled_temperature, settings.sampled))
    figures: dict[str, Any] = {}
    for suffix, temperature, samples in passes:
        backend.reseed(stable_seed(config.seed, f"eval{suffix}", number))
        policy = backend.policy(
            temperature=temperature, max_new_tokens=config.rollout.max_new_tokens
        )
        result = evaluate(
            env,
            policy,
            eval_slots(env, config, number, suffix=suffix, samples=samples),
            out=out.with_name(f"{out.stem}{suffix}{out.suffix}"),
            max_turns=settings.max_turns,
            concurrency=config.rollout.concurrency,
            progress=progress,
            metadata={"run": f"eval{suffix}", "iteration": number, "seed": config.seed},
            phase=f"eval{suffix} {number}",
            fsync=True,
        ).figures
        if suffix:
            figures["sampled"] = {**result, "temperature": temperature}
        else:
            figures.update(result)
    if reference is not None:
        figures["reference_logprob"] = reference()
    return figures


class ReferenceChecks:
    """A run's reference log-likelihoods (`hero_agents.scoring`): on the held-out tasks, as a
    learning curve; on ``guard.tasks`` train tasks, as a drift guard. Scored with the trained
    adapter's model, or the warm start's before any training."""

    def __init__(self, config: TrainConfig, env: Environment, warm_model: Path) -> None:
        self.config = config
        self.env = env
        self.warm_model = warm_model
        self._warm: Any = None
        self._scorers: dict[str, ReferenceScorer | None] = {}

    def _model(self, trained: Any) -> Any:
        if trained is not None:
            return trained
        if self._warm is None:
            import torch
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(self.warm_model, dtype=torch.float32)
            self._warm = model.to(resolve_device(self.config.device)).eval()
        return self._warm

    def _scorer(self, which: str) -> ReferenceScorer | None:
        if which not in self._scorers:
            from transformers import AutoTokenizer

            config = self.config
            if which == "eval":
                wanted, tasks = config.eval.reference_logprob, eval_tasks(self.env, config)
            else:
                train = self.env.task_ids("train")
                wanted, tasks = config.guard.tasks > 0, train[: config.guard.tasks]
            scorer = None
            if wanted and isinstance(self.env, DemonstrationSource):
                tokenizer = AutoTokenizer.from_pretrained(self.warm_model)
                scorer = ReferenceScorer(self.env, tasks, tokenizer)
            self._scorers[which] = scorer
        return self._scorers[which]

    def held_out(self, trained: Any) -> dict[str, Any] | None:
        """The held-out reference log-prob per token (None where there is none to score)."""
        scorer = self._scorer("eval")
        return None if scorer is None else scorer.score(self._model(trained))

    def guard(self, trained: Any, baseline: dict[str, Any] | None) -> dict[str, Any] | None:
        """Score the train-split reference actions; past ``guard.max_drop`` below the warm
        start's (`baseline`; None: this is the warm start), stop the run (or warn)."""
        scorer = self._scorer("guard")
        score = None if scorer is None else scorer.score(self._model(trained))
        if score is None:
            return None
        start = score["value"] if baseline is None else baseline["baseline"]
        dropped = start - score["value"] > self.config.guard.max_drop
        if dropped:
            logger.warning(
                "drift guard: train-split reference log-prob %.3f per token, %.3f below the warm "
                "start's %.3f (limit %.3f)%s",
                score["value"],
                start - score["value"],
                start,
                self.config.guard.max_drop,
                ": the run stops here" if self.config.guard.action == "stop" else "",
            )
        return {
            "reference_logprob": score["value"],
            "ci": score["ci"],
            "baseline": start,
            "stopped": dropped and self.config.guard.action == "stop",
        }


class TrainingRun:
    """One ``hero train`` run in its folder; `run` carries it to the end of its budget."""

    def __init__(
        self,
        config: TrainConfig,
        root: Path,
        *,
        env: Environment,
        backend: PolicyBackend,
        warm_model: Path,
        reflector: ReflectorFactory,
        progress: Progress = no_progress,
        on_iteration: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.method = METHODS[config.method]
        self.dir = RunDir(root)
        self.env = env
        self.backend = backend
        self.warm_model = warm_model
        self.make_reflector = reflector
        self.progress = progress
        self.on_iteration = on_iteration
        self._trainer_model: Any = None  # the PEFT model carried from one iteration to the next
        self.checks = ReferenceChecks(config, env, warm_model)
        settings = config.train
        self._optimizer = RunOptimizer(
            LearningRateSchedule(
                peak=settings.learning_rate,
                total_steps=config.budget.iterations * config.planned_steps_per_iteration,
                warmup_steps=settings.warmup_steps,
                shape=settings.schedule,
            )
        )
        self._version = "warm-start"
        self._train_ids = env.task_ids("train")
        # Fail now, not at iteration 1, if the environment has too few tasks.
        iteration_tasks(self._train_ids, seed=config.seed, iteration=1, count=config.rollout.tasks)
        eval_slots(env, config)

    # ---- the whole run

    def run(self) -> list[dict[str, Any]]:
        """Evaluate the starting policy, then run iterations until the budget is spent; returns
        every iteration's metrics (iteration 0 is the starting policy's evaluation)."""
        self._resume_policy()
        if not self.dir.finished(0):
            clock = PhaseClock(self.dir.seconds(0))
            evaluation = self._evaluate(0, clock)
            guard = self.checks.guard(None, None)
            self._finish(0, {"eval": evaluation, "guard": guard}, clock.totals)
        number = 1
        while self._budget_left(number):
            if not self.dir.finished(number):
                self.run_iteration(number)
            number += 1
        last = number - 1
        row = read_json(self.dir.iteration_metrics(last)) if last >= 1 else {}
        if last >= 1 and row.get("eval") is None:
            clock = PhaseClock(self.dir.seconds(last))
            clock.totals.update(row["seconds"])
            row["eval"] = self._evaluate(last, clock)
            self._finish(last, row, clock.totals)
        return self.dir.write_metrics_file()

    def _budget_left(self, number: int) -> bool:
        budget = self.config.budget
        if number > budget.iterations:
            return False
        previous = read_json(self.dir.iteration_metrics(number - 1))
        if (previous.get("guard") or {}).get("stopped"):
            return False  # the drift guard stopped the run
        if budget.rollout_turns is None or number == 1:
            return True
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
        clock = PhaseClock(self.dir.seconds(number))
        trajectories, row = self._rollouts(number, clock)
        diagnosed, row["reflect"] = self._reflect(number, trajectories, clock)
        row["train"] = self._train(number, diagnosed, clock)
        clock.start("sync")
        adapter = self.dir.adapter(number)
        if adapter.is_dir():
            self._version = self.backend.sync(
                adapter, version=f"policy-v{number}", reference_model=self._trainer_model
            )
        clock.stop()
        clock.start("guard")
        baseline = read_json(self.dir.iteration_metrics(0)).get("guard")
        row["guard"] = self.checks.guard(self._trainer_model, baseline)
        clock.stop()
        row["eval"] = None
        stopped = bool(row["guard"] and row["guard"]["stopped"])
        if number % self.config.eval.every == 0 or stopped:
            row["eval"] = self._evaluate(number, clock)
        return self._finish(number, row, clock.totals)

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
            "reflector": str(self.config.reflector) if self.method.uses_run_reflector else None,
            "seed": self.config.seed,
            "policy_version": self._version,
            "seconds": dict(seconds),
        }
        write_json_atomic(self.dir.iteration_metrics(number), row)
        self.dir.write_metrics_file()
        if self.on_iteration is not None:
            self.on_iteration(row)
        return row

    # ---- phases

    def _ticking(self, clock: PhaseClock) -> Progress:
        """The run's progress display, also ticking the phase clock once per item."""

        def start(phase: str, total: int) -> Callable[[str], None]:
            advance = self.progress(phase, total)

            def tick(status: str) -> None:
                clock.tick()
                advance(status)

            return tick

        return start

    def _rollouts(self, number: int, clock: PhaseClock) -> tuple[list[Trajectory], dict]:
        settings = self.config.rollout
        tasks = iteration_tasks(
            self._train_ids, seed=self.config.seed, iteration=number, count=settings.tasks
        )
        clock.start("rollout")
        self.backend.reseed(stable_seed(self.config.seed, "rollout", number))
        batch = run_episodes(
            self.env,
            self.backend.policy(
                temperature=settings.temperature,
                max_new_tokens=settings.max_new_tokens,
                top_p=settings.top_p,
            ),
            task_slots(f"rollout-{number:04d}", tasks, settings.group_size),
            out=self.dir.rollouts(number),
            max_turns=settings.max_turns,
            concurrency=settings.concurrency,
            metadata={"run": "rollout", "iteration": number, "seed": self.config.seed},
            progress=self._ticking(clock),
            phase=f"rollout {number}",
            fsync=True,
        )
        seconds = clock.stop()
        figures = episode_figures(batch.trajectories, self.env)
        figures["failed"] = len(batch.failures)
        figures["tokens_per_second"] = (
            figures["completion_tokens"] / seconds if seconds > 0 else None
        )
        if batch.failures:
            figures["failures"] = {f.slot.id: f.error for f in batch.failures}
        return batch.trajectories, {"rollout": figures}

    def _evaluate(self, number: int, clock: PhaseClock) -> dict[str, Any]:
        clock.start("eval")
        figures = evaluate_policy(
            self.config,
            self.env,
            self.backend,
            self.dir.eval(number),
            number=number,
            progress=self._ticking(clock),
            reference=lambda: self.checks.held_out(self._trainer_model),
        )
        figures["seconds"] = clock.stop()
        return figures

    def _reflect(
        self, number: int, trajectories: list[Trajectory], clock: PhaseClock
    ) -> tuple[list[Trajectory], dict[str, Any]]:
        """Diagnose the iteration's rollouts (resuming); returns the diagnosed ones in rollout
        order, and the reflection's figures."""
        if self.method.reflection == "none":
            return trajectories, ReflectionSummary().figures(None)
        out, failures = self.dir.diagnosed(number), self.dir.reflect_failures(number)
        wanted = {t.id for t in trajectories}
        done = {t.id for t in read_whole_lines(out)} | set(read_failures(failures))
        clock.start("reflect")
        if wanted - done:
            pool = [t for n in range(1, number + 1) for t in read_whole_lines(self.dir.rollouts(n))]
            with self.make_reflector(number, pool) as reflector:
                reflect_trajectories(
                    reflector,
                    trajectories,
                    out,
                    failures=failures,
                    retry_failed=False,
                    progress=self._ticking(clock),
                    phase=f"reflect {number}",
                    fsync=True,
                )
        clock.stop()
        diagnosed = diagnosed_in_order(out, trajectories)
        failed = {k: v for k, v in read_failures(failures).items() if k in wanted}
        summary = ReflectionSummary.of(diagnosed, failed)
        return diagnosed, summary.figures(self._reflector_label())

    def _reflector_label(self) -> str:
        """Who wrote the iteration's diagnoses, as tables name it (privileged ones marked)."""
        row = self.method
        if row.uses_run_reflector:
            name = str(self.config.reflector)
        elif row.reflection == "demo" and row.demonstrations == "reference":
            name = "demo:reference"
        else:
            name = row.reflection
        return reflector_label(name)

    def _train(self, number: int, data: list[Trajectory], clock: PhaseClock) -> dict[str, Any]:
        """Distill the iteration's trajectories into its adapter (resuming); returns figures."""
        adapter = self.dir.adapter(number)
        skipped = self.dir.iteration(number) / "train-skipped.json"
        if skipped.is_file():
            return read_json(skipped)
        done = finished_figures(adapter)
        if done is not None:
            return done
        if self.method.signal == "grpo":
            data = _with_reward_contrast(data)
        clock.start("train")
        try:
            if not data:
                raise NothingToTrain(
                    "no trajectory to train on (see the rollout and reflect figures)"
                )
            previous = self.dir.latest_adapter(before=number)
            result = distill(
                self._trainer_model if self._trainer_model is not None else str(self.warm_model),
                data,
                hero_config(
                    self._settings(number, len(data)),
                    output_dir=self.dir.iteration(number) / "tmp",
                ),
                adapter,
                progress=self._ticking(clock),
                phase=f"train {number}",
                prepare=lambda trainer: self._optimizer.attach(
                    trainer, resume_from=previous[1] if previous else None
                ),
                on_save=self._optimizer.save,
            )
        except NothingToTrain as reason:
            clock.stop()
            logger.warning("iteration %d trains nothing: %s", number, reason)
            figures = {"skipped": str(reason)}
            write_json_atomic(skipped, figures)
            self._carry_adapter(number)
            return figures
        clock.stop()
        if result.trainer is not None:
            self._trainer_model = result.trainer.model
        shutil.rmtree(self.dir.iteration(number) / "tmp", ignore_errors=True)
        return result.figures

    def _settings(self, number: int, trajectories: int) -> DistillSettings:
        settings = self.config.train
        return DistillSettings(
            signal=self.method.signal,
            loss=settings.loss,
            teacher=settings.teacher,
            learning_rate=settings.learning_rate,
            epochs=settings.epochs,
            max_steps=settings.steps_per_iteration or -1,
            accumulation=min(settings.batch_size, trajectories),
            lora_r=settings.lora_r,
            turns=self.method.turns,
            flagged_valid_share=settings.targeted_valid_share,
            seed=stable_seed(self.config.seed, "train", number),
            device=self.config.device,
            report_to=self.config.report_to,
            options={
                "hindsight_note_placement": settings.note_placement or self.method.note_placement,
                "distill_action_opening": settings.distill_action_opening,
                "seq_kd": settings.seq_kd and not self.method.needs_group_contrast,
                "seq_kd_max_new_tokens": self.config.rollout.max_new_tokens,  # the policy's
                **settings.options,
            },
        )

    def _carry_adapter(self, number: int) -> None:
        """An iteration that trained nothing keeps the previous iteration's adapter."""
        latest = self.dir.latest_adapter(before=number)
        if latest is not None:
            target = self.dir.adapter(number)
            scratch = target.with_name("adapter.partial")
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.copytree(latest[1], scratch, ignore=shutil.ignore_patterns("hero_train.json"))
            scratch.rename(target)


def _with_reward_contrast(trajectories: list[Trajectory]) -> list[Trajectory]:
    """GRPO's data: the trajectories of tasks whose group has different rewards (the others
    have advantage 0 and no gradient, so training on them would only cost time)."""
    rewards: dict[str | None, set[float]] = {}
    for trajectory in trajectories:
        rewards.setdefault(trajectory.task_id, set()).add(trajectory.reward or 0.0)
    return [t for t in trajectories if len(rewards[t.task_id]) > 1]
