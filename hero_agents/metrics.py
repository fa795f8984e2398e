"""Episode metrics shared by evaluation, training and reports: success, pass^k, turns, errors.

pass^k is tau-bench's reliability metric (Yao et al. 2024, "τ-bench", arXiv 2406.12045): a
task run n times with c successes contributes ``C(c, k) / C(n, k)``, the chance that k trials
drawn without replacement from its n all succeed; pass^k is the mean over tasks with ``n >= k``.
pass^1 is the plain success rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from math import comb
from typing import Any

from hero_agents.environment import Environment, SolutionLengths
from hero_agents.stats import success_interval
from hero_agents.trajectory import Trajectory, Turn

SUCCESS_THRESHOLD = 1.0
"""A trajectory succeeds when its reward reaches this (tau2 rewards are 0 or 1)."""


def is_success(trajectory: Trajectory, threshold: float = SUCCESS_THRESHOLD) -> bool:
    """Whether the episode earned its task's full reward."""
    return trajectory.reward is not None and trajectory.reward >= threshold


def successes_by_task(
    trajectories: Iterable[Trajectory], threshold: float = SUCCESS_THRESHOLD
) -> dict[str, list[bool]]:
    """Each task's trial outcomes, in input order (trajectories without a task id are skipped)."""
    trials: dict[str, list[bool]] = defaultdict(list)
    for trajectory in trajectories:
        if trajectory.task_id is not None:
            trials[trajectory.task_id].append(is_success(trajectory, threshold))
    return dict(trials)


def pass_hat_k(trials: dict[str, Sequence[bool]], k: int) -> float | None:
    """tau-bench's pass^k over tasks with at least k trials; None when no task has k trials."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    per_task = [
        comb(sum(outcomes), k) / comb(len(outcomes), k)
        for outcomes in trials.values()
        if len(outcomes) >= k
    ]
    return sum(per_task) / len(per_task) if per_task else None


def task_pass_hat_k(task_success: Mapping[str, float], trials: int, k: int) -> dict[str, float]:
    """Each task's pass^k, ``C(c, k) / C(trials, k)``, from its share ``c / trials`` of
    successful episodes (an evaluation's ``task_success`` when every task ran `trials` times)."""
    if not 1 <= k <= trials:
        raise ValueError(f"k must be between 1 and the {trials} trials, got {k}")
    return {
        task: comb(round(share * trials), k) / comb(trials, k)
        for task, share in task_success.items()
    }


def is_invalid_action(turn: Turn) -> bool:
    """A turn whose action was malformed (a tool call that did not parse) or that the
    environment rejected (a tool result with ``status: error``)."""
    return bool(turn.action.get("invalid_tool_calls")) or turn.tool_errors > 0


@dataclass(frozen=True)
class EpisodeStats:
    """Headline figures of a set of episodes (the same ones whatever produced them)."""

    episodes: int
    tasks: int
    success_rate: float
    """pass@1: the share of episodes that succeeded."""
    pass_hat_k: dict[int, float]
    """pass^k for each k up to the most trials of any task (tasks with at least k trials)."""
    mean_reward: float
    mean_turns: float
    turns: int
    tool_calls: int
    invalid_action_rate: float
    """Share of turns with a malformed tool call or a tool error."""
    tool_error_rate: float
    """Share of tool calls whose result was an error."""

    @classmethod
    def of(
        cls, trajectories: Sequence[Trajectory], *, threshold: float = SUCCESS_THRESHOLD
    ) -> EpisodeStats:
        count = len(trajectories)
        trials = successes_by_task(trajectories, threshold)
        most = max((len(v) for v in trials.values()), default=0)
        hat = {k: pass_hat_k(trials, k) for k in range(1, most + 1)}
        turns = [turn for t in trajectories for turn in t.turns]
        calls = sum(t.tool_calls for t in trajectories)
        invalid = sum(is_invalid_action(turn) for turn in turns)
        return cls(
            episodes=count,
            tasks=len(trials),
            success_rate=sum(is_success(t, threshold) for t in trajectories) / count
            if count
            else 0.0,
            pass_hat_k={k: v for k, v in hat.items() if v is not None},
            mean_reward=sum(t.reward or 0.0 for t in trajectories) / count if count else 0.0,
            mean_turns=len(turns) / count if count else 0.0,
            turns=len(turns),
            tool_calls=calls,
            invalid_action_rate=invalid / len(turns) if turns else 0.0,
            tool_error_rate=sum(t.tool_errors for t in trajectories) / calls if calls else 0.0,
        )


def tau2_pass_hat_k(trajectories: Sequence[Trajectory]) -> dict[int, float]:
    """pass^k as tau2-bench reports it: for each k up to the fewest trials of any task, the
    mean over every task of C(successes, k) / C(trials, k)."""
    trials = successes_by_task(trajectories)
    fewest = min((len(outcomes) for outcomes in trials.values()), default=0)
    hat = {k: pass_hat_k(trials, k) for k in range(1, fewest + 1)}
    return {k: value for k, value in hat.items() if value is not None}


def unnecessary_turn_rate(trajectories: Sequence[Trajectory], env: Environment) -> float | None:
    """Share of turns beyond each task's shortest correct episode:
    ``sum(max(0, turns - solution_turns)) / sum(turns)`` over episodes whose task has a known
    solution length (the environment's `SolutionLengths`); None when no task has one."""
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
    """The figures every report shows of a set of episodes (JSON-ready): success with its 95%
    bootstrap interval over tasks (`hero_agents.stats`) and each task's share of successes
    (for paired comparisons between runs), pass^k, reward, turns, the unnecessary-turn and
    invalid-action rates, tool use and tokens."""
    stats = EpisodeStats.of(trajectories)
    trials = successes_by_task(trajectories)
    interval = success_interval(trials) if trials else None
    tokens = sum(
        len(turn.tokens.completion_token_ids)
        for trajectory in trajectories
        for turn in trajectory.turns
        if turn.tokens is not None
    )
    episodes = stats.episodes
    return {
        "episodes": episodes,
        "tasks": stats.tasks,
        "success_rate": stats.success_rate,
        "success_ci": [interval.low, interval.high] if interval else None,
        "task_success": {task: sum(o) / len(o) for task, o in sorted(trials.items())},
        "pass_hat_k": {str(k): v for k, v in tau2_pass_hat_k(trajectories).items()},
        "mean_reward": stats.mean_reward,
        "mean_turns": stats.mean_turns,
        "turns": stats.turns,
        "unnecessary_turn_rate": unnecessary_turn_rate(trajectories, env),
        "invalid_action_rate": stats.invalid_action_rate,
        "tool_error_rate": stats.tool_error_rate,
        "episodes_with_tool_calls": (
            sum(t.tool_calls > 0 for t in trajectories) / episodes if episodes else 0.0
        ),
        "turns_with_tool_calls": (
            sum(bool(turn.action.get("tool_calls")) for t in trajectories for turn in t.turns)
            / stats.turns
            if stats.turns
            else 0.0
        ),
        "completion_tokens": tokens,
    }
