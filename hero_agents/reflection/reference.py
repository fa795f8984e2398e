"""Reference reflection: each turn set against the benchmark's reference solution (privileged).

`ReferenceReflector` (spec ``reference``) walks a trajectory's turns along the reference of its
task (`ReferenceSolutions`): the reference's tool calls in order, then its closing reply. At each
turn the *due* steps are the earliest step not yet made successfully and the others of its
``any_order`` group. A call matches a step when the tool is the same and the arguments are equal
once parsed: key order and JSON spacing do not matter; types and string values do (``"3"`` is
not ``3``, nor ``"Buy milk "`` ``"Buy milk"``: tau2 hands arguments to its tools and evaluator
unconverted, and WebShop's tools reject a number for a button).

- A call that matches a due step and ran without a tool error, or the closing reply once no
  call is due: valid, necessary. These are the only correct actions.
- The tool of a due step with other arguments (or a malformed call of it): necessary, invalid.
- A call of a reference step that is not due yet: necessary, invalid (too early).
- A repeat of a step already made, or a call the reference does not need: unnecessary; invalid
  only with a tool error or a malformed call.
- A reply while reference calls are missing: necessary (every episode ends with one), invalid.
- Whatever the trace proves invalid (`grounded.prove_turn`: a tool error, a malformed, cut-off
  or schema-violating call) is invalid, e.g. a cut-off reply in the closing reply's place.

The hint of a correct action is empty: teacher and student then see the same context, so the
turn carries no signal. A confirmation would tell the teacher nothing the action does not
already say, and a note's mere presence moves the teacher: measured on the 135M default, a note
before acting halved the probability of the token that opens even the gold call, and distilling
toward that teaches the policy to stop calling tools. Any other turn's hint names the right next
action exactly while every earlier turn matched the reference (the context is the reference's
own), and, once the episode diverged, the reference calls still missing (after a divergence
their arguments may no longer fit the state, e.g. an id the environment hands out in order).
A hint names a call as the JSON object the policy writes inside its tool-call tags
(`call_json`), which the teacher can copy token for token; causes use the compact
`render_call`. Measured with `hero probe` on 64 train rollouts of the 135M default (note at the
end of the system prompt): the teacher preferred the reference on 94% of 35 wrong turns with
JSON hints, 82% of 34 with the compact form.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hero_agents.environment import (
    DemonstrationSource,
    Environment,
    ReferenceSolution,
    ReferenceSolutions,
)
from hero_agents.errors import ConfigError, HeroError
from hero_agents.reflection.base import ReflectionResult, Reflector
from hero_agents.reflection.baselines import DemoReflector
from hero_agents.reflection.grounded import prove_turn
from hero_agents.reflection.prompt import clip, content_text
from hero_agents.trajectory import Diagnosis, Message, Trajectory, Turn, is_tool_error

logger = logging.getLogger(__name__)

REFERENCE = "reference"
"""The reference reflector's name, written into its diagnoses."""
REFERENCE_DEMO = "demo:reference"
"""The name of the `demo` baseline whose demonstrations are the reference solutions."""
PRIVILEGED_REFLECTORS = frozenset({REFERENCE, REFERENCE_DEMO})
"""Reflectors that see a benchmark's answers: upper bounds, never evidence against a baseline."""

SHOWN_MISSING = 3
"""Missing reference calls a hint names before it only counts the rest."""


def reflector_label(reflector: str) -> str:
    """How tables, reports and logs name a reflector (a spec or a diagnosis' ``reflector``):
    a privileged one says so, e.g. ``"reference (privileged)"``."""
    parts = reflector.split("+")  # grounded+reference sees the answers too
    privileged = reflector in PRIVILEGED_REFLECTORS or parts[-1] in PRIVILEGED_REFLECTORS
    return f"{reflector} (privileged)" if privileged else reflector


# --------------------------------------------------------------------------- calls


@dataclass(frozen=True)
class _Call:
    """One tool call of an action, parsed; `malformed` says why its arguments are unusable."""

    id: str | None
    name: str | None
    arguments: Any = None
    malformed: str | None = None


@dataclass(frozen=True)
class _Step:
    """One step of the reference: a tool call (`call`) or the closing reply (`reply`)."""

    action: int
    call: _Call | None = None
    compared: frozenset[str] | None = None
    reply: str = ""


def _calls(action: Message) -> list[_Call]:
    calls = []
    for raw in action.get("tool_calls") or []:
        function = raw.get("function") or raw
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as error:
                calls.append(_Call(raw.get("id"), function.get("name"), malformed=str(error)))
                continue
        calls.append(_Call(raw.get("id"), function.get("name"), arguments or {}))
    for raw in action.get("invalid_tool_calls") or []:
        calls.append(_Call(None, raw.get("name"), malformed=str(raw.get("error"))))
    return calls


def same_value(a: Any, b: Any) -> bool:
    """JSON values equal as a tool receives them: objects regardless of key order, numbers by
    value (``1 == 1.0``), but never across types (``"1" != 1``, ``true != 1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _compared(arguments: Any, step: _Step) -> dict[str, Any]:
    """The arguments of a call that count for `step` (all, unless the step limits them)."""
    if not isinstance(arguments, dict):
        return {}
    if step.compared is None:
        return arguments
    return {k: v for k, v in arguments.items() if k in step.compared}


def _matches(call: _Call, step: _Step) -> bool:
    expected = step.call
    if expected is None or call.malformed or call.name != expected.name:
        return False
    if not isinstance(call.arguments, dict):
        return False
    return same_value(_compared(expected.arguments, step), _compared(call.arguments, step))


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_call(name: str | None, arguments: Any) -> str:
    """A call as a compact line, e.g. ``create_task(user_id="u1", title="Buy milk")``."""
    if not isinstance(arguments, dict):
        return f"{name}({_value(arguments)})"
    return f"{name}({', '.join(f'{k}={_value(v)}' for k, v in arguments.items())})"


def call_json(name: str | None, arguments: Any) -> str:
    """A call as the JSON object a policy writes inside its tool-call tags, e.g.
    ``{"name": "create_task", "arguments": {"user_id": "u1"}}``: a teacher can copy it."""
    return _value({"name": name, "arguments": arguments})


def _render(step: _Step, *, for_teacher: bool = False) -> str:
    """A step in a cause (`render_call`, compact) or in a hint (`call_json`, to be copied)."""
    if step.call is None:
        return f"a reply without a tool call: {_value(clip(step.reply, 200))}"
    render = call_json if for_teacher else render_call
    return render(step.call.name, step.call.arguments)


def _difference(call: _Call, step: _Step) -> str:
    assert step.call is not None
    wanted, given = _compared(step.call.arguments, step), _compared(call.arguments, step)
    parts = [f"{k} missing" for k in wanted if k not in given]
    parts += [
        f"{k}={_value(given[k])} (reference: {_value(v)})"
        for k, v in wanted.items()
        if k in given and not same_value(v, given[k])
    ]
    parts += [f"{k} is not in the reference" for k in given if k not in wanted]
    return "wrong arguments: " + ", ".join(parts)


# --------------------------------------------------------------------------- alignment


@dataclass(frozen=True)
class AlignedTurn:
    """One turn set against the reference."""

    diagnosis: Diagnosis
    on_reference: bool
    """Every earlier turn matched the reference, so this turn's context is the reference's."""
    reference_action: Message | None
    """The reference's next action in this context (None off the reference or past its end)."""


@dataclass(frozen=True)
class _Verdict:
    necessary: bool
    valid: bool
    cause: str | None = None

    @property
    def correct(self) -> bool:
        return self.necessary and self.valid and self.cause is None


class _Walk:
    """The reference steps, which of them are made, and which are due next."""

    def __init__(self, solution: ReferenceSolution) -> None:
        self.solution = solution
        self.steps: list[_Step] = []
        for index, action in enumerate(solution.actions):
            calls = _calls(action)
            compared = solution.compared_arguments.get(index)
            self.steps += [_Step(index, call, compared) for call in calls]
            if not calls:
                self.steps.append(_Step(index, reply=content_text(action.get("content"))))
        self.made: dict[int, int] = {}  # step position -> turn that made it

    def pending(self) -> list[int]:
        return [i for i in range(len(self.steps)) if i not in self.made]

    def due(self) -> list[int]:
        pending = self.pending()
        if not pending:
            return []
        first = self.steps[pending[0]].action
        group = next((g for g in self.solution.any_order if first in g), frozenset({first}))
        return [i for i in pending if self.steps[i].action in group]

    def missing_calls(self) -> list[int]:
        return [i for i in self.pending() if self.steps[i].call is not None]

    def judge_call(self, call: _Call, error: str | None, turn: int) -> _Verdict:
        due = self.due()
        due_names = {self.steps[i].call.name for i in due if self.steps[i].call is not None}
        if call.malformed is not None:
            cause = f"malformed tool call {call.name}: {call.malformed}"
            return _Verdict(call.name in due_names, False, cause)
        failed = f"; the tool said: {error}" if error else ""
        match = next((i for i in due if _matches(call, self.steps[i])), None)
        if match is not None:
            if error:
                return _Verdict(True, False, f"the reference call failed here: {error}")
            self.made[match] = turn
            return _Verdict(True, True)
        early = next((i for i in self.pending() if _matches(call, self.steps[i])), None)
        if early is not None:
            if not error:
                self.made[early] = turn
            return _Verdict(
                True, False, f"too early: {_render(self.steps[due[0]])} comes first{failed}"
            )
        repeat = next((i for i in self.made if _matches(call, self.steps[i])), None)
        if repeat is not None:
            cause = f"repeats the call made at turn {self.made[repeat]}{failed}"
            return _Verdict(False, not error, cause)
        wrong = next(
            (i for i in due if self.steps[i].call and self.steps[i].call.name == call.name), None
        )
        if wrong is not None:
            return _Verdict(True, False, _difference(call, self.steps[wrong]) + failed)
        return _Verdict(False, not error, f"not in the reference{failed}")

    def judge_reply(self, turn: int) -> _Verdict:
        missing = self.missing_calls()
        if missing:
            return _Verdict(True, False, f"replied with {len(missing)} reference call(s) missing")
        for i in self.pending():  # the closing reply
            self.made[i] = turn
        return _Verdict(True, True)

    def hint(self, on_reference: bool) -> str:
        due = self.due()
        if on_reference and due:
            step = self.steps[due[0]]
            if step.call is None:
                return f"The correct next step is {_render(step, for_teacher=True)}"
            return f"The correct next call is {_render(step, for_teacher=True)}"
        missing = self.missing_calls()
        if missing:
            shown = "; ".join(
                _render(self.steps[i], for_teacher=True) for i in missing[:SHOWN_MISSING]
            )
            more = len(missing) - SHOWN_MISSING
            return f"Still missing: {shown}" + (f" (and {more} more)" if more > 0 else "")
        if due:
            left = _render(self.steps[due[0]], for_teacher=True)
            return f"Every reference call is made; what is left is {left}"
        return "The reference solution is complete: nothing more is needed."


def _tool_errors(turn: Turn) -> dict[str, str]:
    return {
        m.get("tool_call_id", ""): content_text(m.get("content"))
        for m in turn.observation
        if is_tool_error(m)
    }


def align_with_reference(
    trajectory: Trajectory,
    solution: ReferenceSolution,
    *,
    reflector: str = REFERENCE,
    max_hint_chars: int = 400,
    cause_chars: int = 300,
) -> list[AlignedTurn]:
    """Every turn of `trajectory` judged against `solution` (see the module doc)."""
    walk = _Walk(solution)
    on_reference = True
    aligned = []
    for turn in trajectory.turns:
        due = walk.due()
        reference_action = (
            solution.actions[walk.steps[due[0]].action] if on_reference and due else None
        )
        hint = walk.hint(on_reference)
        calls = _calls(turn.action)
        errors = _tool_errors(turn)
        verdicts = [walk.judge_call(c, errors.get(c.id or ""), turn.index) for c in calls]
        if not calls:
            verdicts = [walk.judge_reply(turn.index)]
        proven = prove_turn(turn)
        if proven.invalid and all(v.valid for v in verdicts):  # e.g. a cut-off closing reply
            verdicts.append(_Verdict(True, False, proven.cause))
        correct = all(v.correct for v in verdicts)
        causes = [v.cause for v in verdicts if v.cause]
        diagnosis = Diagnosis(
            turn_index=turn.index,
            necessity="necessary" if all(v.necessary for v in verdicts) else "unnecessary",
            validity="valid" if all(v.valid for v in verdicts) else "invalid",
            cause=clip("; ".join(causes), cause_chars) if causes else None,
            hint="" if correct else clip(hint, max_hint_chars),
            reflector=reflector,
        )
        aligned.append(AlignedTurn(diagnosis, on_reference, reference_action))
        on_reference = on_reference and correct
    return aligned


# --------------------------------------------------------------------------- reflectors


class ReferenceReflector(Reflector):
    """Diagnoses each turn against the environment's reference solution of the task
    (`align_with_reference`). Privileged: label it with `reflector_label`."""

    name = REFERENCE

    def __init__(
        self, env: Environment, *, max_hint_chars: int = 400, cause_chars: int = 300
    ) -> None:
        if not isinstance(env, ReferenceSolutions):
            raise ConfigError(
                f"the reference reflector needs an environment with reference solutions; "
                f"{env.name} ({type(env).__name__}) has none"
            )
        self.env: Environment = env
        self._reference_solution = env.reference_solution
        self.max_hint_chars = max_hint_chars
        self.cause_chars = cause_chars
        self._solutions: dict[str, ReferenceSolution | None] = {}

    def solution_for(self, trajectory: Trajectory) -> ReferenceSolution | str:
        """The reference of the trajectory's task, or why there is none."""
        if trajectory.source == "production":
            return "a production trace has no reference solution (only benchmark episodes do)"
        if trajectory.env is not None and trajectory.env != self.env.name:
            return f"the trajectory is from {trajectory.env}, not {self.env.name}"
        task_id = trajectory.task_id
        if task_id is None:
            return "no task_id, so no reference solution can be looked up"
        if task_id not in self._solutions:
            try:
                self._solutions[task_id] = self._reference_solution(task_id)
            except HeroError as error:
                return str(error)
        solution = self._solutions[task_id]
        if solution is None:
            return f"task {task_id!r} of {self.env.name} has no reference solution"
        return solution

    async def reflect_one(self, trajectory: Trajectory) -> ReflectionResult:
        solution = self.solution_for(trajectory)
        if isinstance(solution, str):
            return ReflectionResult.failed(trajectory, solution)
        aligned = align_with_reference(
            trajectory,
            solution,
            reflector=self.name,
            max_hint_chars=self.max_hint_chars,
            cause_chars=self.cause_chars,
        )
        return ReflectionResult.diagnosed(trajectory, [a.diagnosis for a in aligned])


def reference_demo_reflector(env: Environment, task_ids: Sequence[str]) -> DemoReflector:
    """The `demo` baseline whose demonstrations are the environment's reference episodes of
    `task_ids` (`DemonstrationSource`), so that a whole demonstration and `ReferenceReflector`'s
    per-turn hints compare at equal information. Privileged, like the reference reflector."""
    if not isinstance(env, DemonstrationSource):
        raise ConfigError(
            f"the demo baseline with reference demonstrations needs an environment that has "
            f"them; {env.name} ({type(env).__name__}) has none"
        )
    demos = env.demonstrations(task_ids)
    if not demos.trajectories:
        raise ConfigError(
            f"{env.name} has no reference demonstration of any of the {len(task_ids)} tasks "
            f"asked: {demos.left_out or 'no task was given'}"
        )
    if demos.left_out:
        logger.warning(
            "%d of %d tasks have no reference demonstration: %s",
            len(demos.left_out),
            len(task_ids),
            demos.left_out,
        )
    return DemoReflector(demos.trajectories, name=REFERENCE_DEMO)
