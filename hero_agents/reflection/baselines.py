"""The baselines' feedback, behind the `Reflector` interface so the trainer treats all alike.

- `EnvFeedbackReflector` (``env-feedback``): the hint is the raw next observation, truncated
  (environment-feedback-only self-distillation).
- `DemoReflector` (``demo``): the hint, at every turn, is a successful trajectory of the same
  task (global feedback, as in SDPO's successful-rollout teacher).

Neither judges the action. Their diagnoses record only what the trace proves
(`hero_agents.reflection.grounded.prove_turn`): ``validity`` is "invalid" when a tool error, a
malformed or cut-off call or a schema violation is proven (``cause`` then says which, quoting a
tool error's text), else "valid"; ``necessity`` is always "necessary" (not judged), so a
baseline's share of unnecessary turns is zero by construction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from hero_agents.reflection.base import ReflectionResult, Reflector
from hero_agents.reflection.grounded import prove_turn
from hero_agents.reflection.prompt import clip, content_text, tool_call_names
from hero_agents.trajectory import Diagnosis, Trajectory, Turn, is_tool_error

NO_OBSERVATION = "(no observation: the episode ended after this action)"


def _observed_diagnosis(turn: Turn, hint: str, reflector: str, cause_chars: int) -> Diagnosis:
    finding = prove_turn(turn)
    cause = finding.cause if finding.invalid else None
    return Diagnosis(
        turn_index=turn.index,
        necessity="necessary",
        validity="invalid" if finding.invalid else "valid",
        cause=None if cause is None else clip(cause, cause_chars),
        hint=hint,
        reflector=reflector,
    )


def observation_text(turn: Turn) -> str:
    """The observation after `turn`, one line per message, as the environment gave it."""
    names = tool_call_names([turn.action])
    lines = []
    for message in turn.observation:
        role = message.get("role", "unknown")
        text = content_text(message.get("content"))
        if role == "tool":
            name = message.get("name") or names.get(message.get("tool_call_id", ""), "tool")
            status = " error" if is_tool_error(message) else ""
            lines.append(f"[{name}{status}] {text}")
        else:
            lines.append(f"[{role}] {text}")
    return "\n".join(lines)


class EnvFeedbackReflector(Reflector):
    """Hint = the raw observation that followed the action, cut to `max_chars`."""

    name = "env-feedback"

    def __init__(self, *, max_chars: int = 1000, cause_chars: int = 300) -> None:
        self.max_chars = max_chars
        self.cause_chars = cause_chars

    async def reflect_one(self, trajectory: Trajectory) -> ReflectionResult:
        diagnoses = [
            _observed_diagnosis(
                turn,
                clip(observation_text(turn), self.max_chars) or NO_OBSERVATION,
                self.name,
                self.cause_chars,
            )
            for turn in trajectory.turns
        ]
        return ReflectionResult.diagnosed(trajectory, diagnoses)


def demonstration_text(demo: Trajectory, *, max_chars: int, observation_chars: int = 300) -> str:
    """A successful trajectory as text: each action and, briefly, what came back."""
    lines = [f"A successful attempt at this task (reward {demo.reward}):"]
    for turn in demo.turns:
        text = content_text(turn.action.get("content")).strip()
        calls = [
            f"{(c.get('function') or {}).get('name')}({(c.get('function') or {}).get('arguments')})"
            for c in turn.action.get("tool_calls") or []
        ]
        step = "; ".join(filter(None, [text, *(f"called {call}" for call in calls)])) or "(empty)"
        lines.append(f"{turn.index + 1}. {step}")
        observed = observation_text(turn)
        if observed:
            lines.append(f"   -> {clip(observed, observation_chars)}")
    return clip("\n".join(lines), max_chars)


class DemoReflector(Reflector):
    """Hint = a successful trajectory of the same task, the same at every turn.

    The demo is the first trajectory in `demos` with the same ``task_id`` and a reward of at
    least `success_threshold`, other than the trajectory itself when `exclude_self` (as SDPO's
    ``dont_reprompt_on_self_success``). A trajectory whose task has no such demo fails, named.
    `name` (written into the diagnoses) says where the demos come from when not from rollouts.
    """

    name = "demo"

    def __init__(
        self,
        demos: Iterable[Trajectory],
        *,
        success_threshold: float = 1.0,
        exclude_self: bool = True,
        max_chars: int = 4000,
        cause_chars: int = 300,
        name: str = "demo",
    ) -> None:
        self.name = name
        self.success_threshold = success_threshold
        self.exclude_self = exclude_self
        self.max_chars = max_chars
        self.cause_chars = cause_chars
        self._demos: dict[str, list[Trajectory]] = defaultdict(list)
        for demo in demos:
            if demo.task_id is not None and (demo.reward or 0.0) >= success_threshold:
                self._demos[demo.task_id].append(demo)

    def demo_for(self, trajectory: Trajectory) -> Trajectory | None:
        """The demonstration used for `trajectory`, or None when its task has none."""
        for demo in self._demos.get(trajectory.task_id or "", []):
            if not (self.exclude_self and demo.id == trajectory.id):
                return demo
        return None

    async def reflect_one(self, trajectory: Trajectory) -> ReflectionResult:
        if trajectory.task_id is None:
            return ReflectionResult.failed(trajectory, "no task_id, so no demo can be matched")
        demo = self.demo_for(trajectory)
        if demo is None:
            other = " other than itself" if self.exclude_self else ""
            return ReflectionResult.failed(
                trajectory,
                f"no successful trajectory (reward >= {self.success_threshold}){other} of task "
                f"{trajectory.task_id!r} among the demos",
            )
        hint = demonstration_text(demo, max_chars=self.max_chars)
        diagnoses = [
            _observed_diagnosis(turn, hint, self.name, self.cause_chars)
            for turn in trajectory.turns
        ]
        return ReflectionResult.diagnosed(trajectory, diagnoses)
