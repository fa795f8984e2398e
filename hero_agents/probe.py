"""``hero probe``: do a reflector's hints move the teacher toward better actions? Forward
passes only, no training.

On-policy self-distillation moves the student toward whatever its hinted teacher prefers, so a
reflector's hints are worth checking before any compute is spent on training with them. For
every turn of diagnosed trajectories, the policy scores the action under the student's context
and under the teacher's (the context with the turn's note). Each figure is a *shift*: teacher
minus student, mean log-probability per action token.

- the shift on the action taken, split by what the trace proves about it: *bad* (a tool error,
  a malformed or cut-off call, a schema violation: `hero_agents.reflection.grounded`), *good*
  (the environment's reference action in the same context), or *unknown*;
- the shift on the reference action, where the environment knows one for that context, and the
  share of wrong turns where the teacher prefers the reference over the action taken (the
  note raises the reference's log-probability more than the taken action's);
- how often the reflector's own labels agree with what the trace proves;
- the shift on the tokens that open the action (a tool call's tag and name) apart from its
  arguments, and the teacher/student probability ratio of the first action token: a note can
  raise the arguments it names while lowering the token that opens a tool call, and distilling
  toward that teacher teaches the policy to stop calling tools;
- what the teacher would do: its greedy action under the note, whether it is a well-formed call,
  and whether it matches the reference;
- a one-line verdict.

A good reflector: wrong turns where the teacher prefers the reference well above half, negative
shifts on proven-bad actions, an opening ratio near 1. A reflector worse than chance (below
half) pushes the student toward the wrong actions: training with it makes the agent worse.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hero_agents.distill.examples import (
    NotePlacement,
    TurnExample,
    build_turn_example,
    hindsight_note,
)
from hero_agents.environment import Environment, ReferenceSolutions
from hero_agents.errors import DistillationError, ProbeError
from hero_agents.phases import Progress, no_progress
from hero_agents.reflection.grounded import prove_turn
from hero_agents.reflection.reference import align_with_reference
from hero_agents.scoring import action_logprobs
from hero_agents.trajectory import Message, Trajectory, Turn

Proof = Literal["bad", "good", "unknown"]

GreedyAction = Callable[[Sequence[list[int]]], list[Message]]
"""``greedy(prompts)``: the policy's greedy actions (OpenAI assistant messages, tool calls
parsed) for token-id prompts; supplied by whoever loaded the policy."""

PREFERS_TOWARD = 0.6
"""A reflector points the teacher toward better actions when it prefers the reference on at
least this share of wrong turns (and lowers proven-bad actions)."""

PREFERS_AWAY = 0.5
"""Below this share, it points the teacher away from them (worse than a coin)."""

OPENING_KEPT = 0.8
"""A teacher/student ratio of the first action token below this lowers tool calling."""

SHIFT_NOWHERE = 0.01
"""Mean absolute shifts below this move the teacher nowhere."""


@dataclass
class TurnProbe:
    """What one reflector's note does to the teacher at one turn."""

    trajectory_id: str
    turn_index: int
    reflector: str
    proof: Proof
    labelled_invalid: bool
    labelled_unnecessary: bool
    empty_hint: bool
    taken_shift: float
    opening_ratio: float
    """Teacher over student probability of the action's first token."""
    opening_logratio: float
    """Its log: teacher minus student log-prob of the first token."""
    opening_shift: float
    arguments_shift: float | None
    reference_shift: float | None = None
    prefers_reference: bool | None = None
    """On a wrong turn with a reference: the note raises the reference more than the taken."""
    teacher_call_ok: bool | None = None
    teacher_matches_reference: bool | None = None


@dataclass
class _Scored:
    student: list[float]
    teacher: list[float]
    opening: int

    def shift(self, start: int = 0, end: int | None = None) -> float | None:
        pairs = list(zip(self.teacher, self.student, strict=True))[start:end]
        return sum(t - s for t, s in pairs) / len(pairs) if pairs else None


class Prober:
    """Scores turns under their student and teacher contexts with one policy (see the module
    docstring); student scores are kept, so reflectors compared on the same turns share them."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        note_template: str,
        note_placement: NotePlacement = "system-prompt",
        env: Environment | None = None,
        greedy: GreedyAction | None = None,
        batch_size: int = 8,
        progress: Progress = no_progress,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.note_template = note_template
        self.note_placement = note_placement
        self.env = env if isinstance(env, ReferenceSolutions) else None
        self.greedy = greedy
        self.batch_size = batch_size
        self.progress = progress
        self._student: dict[tuple[str, int, str], list[float]] = {}

    # ---- examples

    def _example(self, trajectory: Trajectory, turn: Turn, note: str | None) -> TurnExample:
        try:
            return build_turn_example(
                trajectory, turn, self.tokenizer, note=note, note_placement=self.note_placement
            )
        except DistillationError as error:
            raise ProbeError(
                f"{error} (the policy's chat template cannot render this turn, so it cannot be "
                "scored)"
            ) from None

    def _references(self, trajectory: Trajectory) -> dict[int, tuple[Message, bool]]:
        """Each turn's reference action where the context is still the reference's, and
        whether the action taken there is the reference's (`align_with_reference`)."""
        if self.env is None or trajectory.task_id is None or trajectory.env != self.env.name:
            return {}
        solution = self.env.reference_solution(trajectory.task_id)
        if solution is None:
            return {}
        found = {}
        for turn, aligned in zip(
            trajectory.turns, align_with_reference(trajectory, solution), strict=True
        ):
            if aligned.on_reference and aligned.reference_action is not None:
                verdict = aligned.diagnosis
                correct = verdict.validity == "valid" and verdict.necessity == "necessary"
                found[turn.index] = (aligned.reference_action, correct and not verdict.hint)
        return found

    @staticmethod
    def _matches(action: Message, reference: Message) -> bool:
        def calls(message: Message) -> list[tuple[Any, Any]]:
            import json

            found = []
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                arguments = function.get("arguments")
                if isinstance(arguments, str):
                    try:
                        arguments = json.loads(arguments)
                    except json.JSONDecodeError:
                        pass
                found.append((function.get("name"), arguments))
            return found

        return bool(calls(reference)) and calls(action) == calls(reference)

    # ---- scoring

    def probe(self, trajectories: Sequence[Trajectory], reflector: str) -> list[TurnProbe]:
        """Every turn of `trajectories` (diagnosed by `reflector`) probed."""
        plans = list(self._plans(trajectories))
        advance = self.progress(f"probe {reflector}", len(plans))
        student_rows: list[tuple[tuple[str, int, str], list[int], list[int]]] = []
        teacher_rows: list[tuple[list[int], list[int]]] = []
        for plan in plans:
            for kind, example in plan["examples"].items():
                key = (plan["trajectory"].id, plan["turn"].index, kind)
                if key not in self._student:
                    student_rows.append((key, example.prompt_ids, example.completion_ids))
                if example.teacher_prompt_ids != example.prompt_ids:  # an empty note: none
                    teacher_rows.append((example.teacher_prompt_ids, example.completion_ids))
        rows = [(p, c) for _, p, c in student_rows]
        scores = action_logprobs(self.model, rows, batch_size=self.batch_size)
        for (key, _, _), values in zip(student_rows, scores, strict=True):
            self._student[key] = values
        teacher_scores = iter(action_logprobs(self.model, teacher_rows, batch_size=self.batch_size))
        greedy = self._greedy_actions(plans)
        probes = []
        for position, plan in enumerate(plans):
            scored = {}
            for kind, example in plan["examples"].items():
                student = self._student[(plan["trajectory"].id, plan["turn"].index, kind)]
                same = example.teacher_prompt_ids == example.prompt_ids
                teacher = student if same else next(teacher_scores)
                scored[kind] = _Scored(student, teacher, example.opening_length)
            probes.append(self._turn_probe(plan, scored, greedy[position], reflector))
            advance(f"turn {plan['turn'].index} of {plan['trajectory'].id}")
        return probes

    def _plans(self, trajectories: Sequence[Trajectory]) -> Iterator[dict[str, Any]]:
        for trajectory in trajectories:
            if not trajectory.diagnoses:
                raise ProbeError(
                    f"trajectory {trajectory.id!r} has no diagnoses: reflect first (hero reflect, "
                    "or hero probe --reflector SPEC)"
                )
            references = self._references(trajectory)
            for turn, diagnosis in zip(trajectory.turns, trajectory.diagnoses, strict=True):
                note = (
                    hindsight_note(diagnosis, self.note_template) if diagnosis.hint.strip() else ""
                )
                examples = {"taken": self._example(trajectory, turn, note)}
                reference, correct = references.get(turn.index, (None, False))
                if reference is not None and not correct:
                    replay = turn.model_copy(update={"action": reference, "tokens": None})
                    examples["reference"] = self._example(trajectory, replay, note)
                yield {
                    "trajectory": trajectory,
                    "turn": turn,
                    "diagnosis": diagnosis,
                    "reference": reference,
                    "correct": correct,
                    "examples": examples,
                }

    def _greedy_actions(self, plans: list[dict[str, Any]]) -> list[Message | None]:
        """The teacher's greedy action at each turn whose note is not empty."""
        if self.greedy is None:
            return [None] * len(plans)
        asked = [i for i, plan in enumerate(plans) if plan["diagnosis"].hint.strip()]
        prompts = [plans[i]["examples"]["taken"].teacher_prompt_ids for i in asked]
        actions: list[Message | None] = [None] * len(plans)
        for start in range(0, len(prompts), self.batch_size):
            chunk = asked[start : start + self.batch_size]
            answers = self.greedy(prompts[start : start + self.batch_size])
            for i, action in zip(chunk, answers, strict=True):
                actions[i] = action
        return actions

    def _turn_probe(
        self,
        plan: dict[str, Any],
        scored: dict[str, _Scored],
        greedy: Message | None,
        reflector: str,
    ) -> TurnProbe:
        turn, diagnosis, reference = plan["turn"], plan["diagnosis"], plan["reference"]
        taken = scored["taken"]
        finding = prove_turn(turn)
        correct = plan["correct"]
        proof: Proof = "bad" if finding.proven_bad else "good" if correct else "unknown"
        probe = TurnProbe(
            trajectory_id=plan["trajectory"].id,
            turn_index=turn.index,
            reflector=reflector,
            proof=proof,
            labelled_invalid=diagnosis.validity == "invalid",
            labelled_unnecessary=diagnosis.necessity == "unnecessary",
            empty_hint=not diagnosis.hint.strip(),
            taken_shift=taken.shift() or 0.0,
            opening_ratio=math.exp(taken.teacher[0] - taken.student[0]),
            opening_logratio=taken.teacher[0] - taken.student[0],
            opening_shift=taken.shift(0, taken.opening) or 0.0,
            arguments_shift=taken.shift(taken.opening),
        )
        if correct:  # the reference is the action taken
            probe.reference_shift = probe.taken_shift
        elif "reference" in scored:
            probe.reference_shift = scored["reference"].shift()
            probe.prefers_reference = (probe.reference_shift or 0.0) > probe.taken_shift
        if greedy is not None:
            calls, invalid = greedy.get("tool_calls") or [], greedy.get("invalid_tool_calls")
            probe.teacher_call_ok = bool(calls) and not invalid
            if reference is not None:
                probe.teacher_matches_reference = self._matches(greedy, reference)
        return probe


# ---- figures


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def _geometric(logs: Sequence[float]) -> float | None:
    mean = _mean(logs)
    return None if mean is None else math.exp(mean)


def _share(flags: Sequence[bool | None]) -> float | None:
    kept = [f for f in flags if f is not None]
    return sum(kept) / len(kept) if kept else None


@dataclass
class ProbeFigures:
    """One reflector's probe over a set of turns (JSON-ready with `asdict`)."""

    reflector: str
    turns: int
    empty_hints: int
    taken_shift: float | None
    taken_shift_by_proof: dict[str, float | None]
    turns_by_proof: dict[str, int]
    reference_turns: int
    reference_shift: float | None
    wrong_turns_with_reference: int
    prefers_reference: float | None
    proven_bad_labelled_invalid: float | None
    proven_good_labelled_valid: float | None
    opening_ratio: float | None
    """The geometric mean over turns of the first action token's teacher/student ratio."""
    opening_shift: float | None
    arguments_shift: float | None
    teacher_call_ok: float | None
    teacher_matches_reference: float | None
    verdict: str = ""
    turn_probes: list[dict[str, Any]] = field(default_factory=list)


def figures(reflector: str, probes: Sequence[TurnProbe]) -> ProbeFigures:
    """The figures of the module docstring for one reflector's `probes`, with its verdict."""
    signalled = [p for p in probes if not p.empty_hint]
    by_proof = {
        proof: [p for p in probes if p.proof == proof] for proof in ("bad", "good", "unknown")
    }
    wrong = [p for p in probes if p.prefers_reference is not None]
    result = ProbeFigures(
        reflector=reflector,
        turns=len(probes),
        empty_hints=len(probes) - len(signalled),
        taken_shift=_mean([p.taken_shift for p in probes]),
        taken_shift_by_proof={k: _mean([p.taken_shift for p in v]) for k, v in by_proof.items()},
        turns_by_proof={k: len(v) for k, v in by_proof.items()},
        reference_turns=sum(p.reference_shift is not None for p in probes),
        reference_shift=_mean([p.reference_shift for p in probes]),
        wrong_turns_with_reference=len(wrong),
        prefers_reference=_share([p.prefers_reference for p in wrong]),
        proven_bad_labelled_invalid=_share(
            [p.labelled_invalid or p.labelled_unnecessary for p in by_proof["bad"]]
        ),
        proven_good_labelled_valid=_share(
            [not (p.labelled_invalid or p.labelled_unnecessary) for p in by_proof["good"]]
        ),
        opening_ratio=_geometric([p.opening_logratio for p in signalled]),
        opening_shift=_mean([p.opening_shift for p in signalled]),
        arguments_shift=_mean([p.arguments_shift for p in signalled]),
        teacher_call_ok=_share([p.teacher_call_ok for p in signalled]),
        teacher_matches_reference=_share([p.teacher_matches_reference for p in signalled]),
        turn_probes=[asdict(p) for p in probes],
    )
    result.verdict = verdict(result)
    return result


def verdict(result: ProbeFigures) -> str:
    """One line: do these hints push the policy toward better actions, away, or nowhere?"""
    if result.turns == result.empty_hints:
        return "nowhere: every hint is empty, so the teacher is the student (no signal)"
    shifts = [abs(p["taken_shift"]) for p in result.turn_probes if not p["empty_hint"]]
    reference = [abs(p["reference_shift"]) for p in result.turn_probes if p["reference_shift"]]
    if max(_mean(shifts) or 0.0, _mean(reference) or 0.0) < SHIFT_NOWHERE:
        return "nowhere: the notes barely move the teacher"
    bad = result.taken_shift_by_proof.get("bad")
    preferred = result.prefers_reference
    if preferred is not None:
        good = preferred >= PREFERS_TOWARD and (bad is None or bad < 0)
        away = preferred < PREFERS_AWAY
    else:  # no reference: what the trace proves is all there is to judge by
        good = bad is not None and bad < -SHIFT_NOWHERE
        away = bad is not None and bad > SHIFT_NOWHERE
    if away:
        line = "away from better actions: training with these hints would make the agent worse"
    elif good:
        line = "toward better actions"
    else:
        line = "nowhere clear: as often toward worse actions as toward better ones"
    if preferred is not None:
        line += f" (the teacher prefers the reference on {preferred:.0%} of wrong turns)"
    elif bad is not None:
        line += f" (proven-bad actions shift {bad:+.3f} per token)"
    ratio = result.opening_ratio
    if ratio is not None and ratio < OPENING_KEPT:
        line += (
            f"; but the note lowers the token that opens the action (x{ratio:.2f}): distilling "
            "it would teach the policy to stop calling tools"
        )
    return line
