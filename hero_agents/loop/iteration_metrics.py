"""The figures each loop iteration records, phase by phase (the rows of metrics.jsonl).

Episode figures are `hero_agents.metrics.EpisodeStats`, plus two that compare methods on the
environment's own terms, whatever their reflector:

- ``unnecessary_turn_rate``: the share of turns beyond the shortest correct episode
  (``sum(max(0, turns - solution_turns)) / sum(turns)`` over episodes whose task has a known
  solution length, from the environment's `SolutionLengths`); None when no task has one.
- ``invalid_action_rate``: the share of turns with a malformed tool call or a tool error.

The reflection figures (``unnecessary_share``, ``invalid_share``) are the reflector's own
judgement of the training rollouts: comparable between runs with the same reflector only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hero_agents.environment import Environment, SolutionLengths
from hero_agents.metrics import EpisodeStats
from hero_agents.trajectory import Trajectory


def unnecessary_turn_rate(trajectories: Sequence[Trajectory], env: Environment) -> float | None:
    """Share of turns beyond each task's shortest correct episode (see module doc)."""
    if not isinstance(env, SolutionLengths):
        return None
    extra = total = 0
    for trajectory in trajectories:
        shortest = env.solution_turns(trajectory.task_id or "")
        if shortest is None:
            continue
        turns = len(trajectory.turns)
        extra += max(0, turns - shortest)
        total += turns
    return extra / total if total else None


def episode_figures(trajectories: Sequence[Trajectory], env: Environment) -> dict[str, Any]:
    """Success, pass^k, turns and error rates of a set of episodes."""
    stats = EpisodeStats.of(trajectories)
    tokens = sum(
        len(turn.tokens.completion_token_ids)
        for trajectory in trajectories
        for turn in trajectory.turns
        if turn.tokens is not None
    )
    return {
        "episodes": stats.episodes,
        "tasks": stats.tasks,
        "success_rate": stats.success_rate,
        "pass_hat_k": {str(k): v for k, v in stats.pass_hat_k.items()},
        "mean_reward": stats.mean_reward,
        "mean_turns": stats.mean_turns,
        "turns": stats.turns,
        "unnecessary_turn_rate": unnecessary_turn_rate(trajectories, env),
        "invalid_action_rate": stats.invalid_action_rate,
        "tool_error_rate": stats.tool_error_rate,
        "episodes_with_tool_calls": sum(t.tool_calls > 0 for t in trajectories) / stats.episodes
        if stats.episodes
        else 0.0,
        "completion_tokens": tokens,
    }


def rollout_figures(batch: Any, env: Environment) -> dict[str, Any]:
    """The training rollouts' figures, with their sampling speed."""
    figures = episode_figures(batch.trajectories, env)
    figures["failed"] = len(batch.failures)
    figures["tokens_per_second"] = (
        figures["completion_tokens"] / batch.seconds if batch.seconds > 0 else None
    )
    return figures


def evaluation_figures(batch: Any, env: Environment) -> dict[str, Any]:
    """The held-out episodes' figures."""
    figures = episode_figures(batch.trajectories, env)
    figures["failed"] = len(batch.failures)
    return figures


def reflection_figures(
    diagnosed: Sequence[Trajectory], failed: dict[str, str], reflector: str | None
) -> dict[str, Any]:
    """How many trajectories were diagnosed, and what the reflector judged of their turns."""
    diagnoses = [d for t in diagnosed for d in t.diagnoses or []]
    count = len(diagnoses)
    return {
        "reflector": reflector,
        "diagnosed": len(diagnosed) if reflector is not None else 0,
        "failed": len(failed),
        "turns": count,
        "unnecessary_share": sum(d.necessity == "unnecessary" for d in diagnoses) / count
        if count
        else None,
        "invalid_share": sum(d.validity == "invalid" for d in diagnoses) / count if count else None,
        "failures": dict(list(failed.items())[:20]),
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def training_figures(trainer: Any, result: Any) -> dict[str, Any]:
    """Loss, divergence and size of one iteration's training, from the trainer's log."""
    log = [row for row in trainer.state.log_history if "loss" in row]
    examples = trainer.train_dataset
    return {
        "steps": trainer.state.global_step,
        "trajectories": len(examples),
        "turns": sum(len(example.turns) for example in examples),
        "action_tokens": sum(len(t.completion_ids) for e in examples for t in e.turns),
        "loss": _mean([row["loss"] for row in log]),
        "first_loss": log[0]["loss"] if log else None,
        "last_loss": log[-1]["loss"] if log else None,
        "divergence": _mean([row["hero/divergence"] for row in log if "hero/divergence" in row]),
        "grpo_loss": _mean([row["hero/grpo_loss"] for row in log if "hero/grpo_loss" in row]),
        "seconds": result.metrics.get("train_runtime"),
    }
