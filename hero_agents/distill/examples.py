"""Training examples: one student and one teacher view of every turn, aligned token by token.

For turn t of a trajectory:

- student prompt: the turn's exact context and tools through the model's chat template, ending
  with the generation prompt (as the policy backend renders it);
- completion: the action's tokens as sampled (`Turn.tokens.completion_token_ids` when captured;
  else the template's rendering of the action up to and including the end-of-turn token);
- teacher prompt: the same context with the turn's diagnosis added as a marked hindsight note,
  in an extra message right before acting or closing the system prompt (`teacher_context`). A
  diagnosis with an empty hint has no note: its teacher prompt is the student's, token for token
  (a grounded reflector's "nothing proven" carries no signal).

Student and teacher score the *same* completion ids, so their log-probs line up position by
position. `student_sequences` packs the turns of an append-only trajectory into one sequence
(each turn's prompt + completion is a prefix of the next turn's prompt), so one forward pass
scores every turn; where a history is rewritten (summarization, trimming) a new sequence starts.

Prompts and completions are tokenized by `ChatTemplate`, as the in-process policy tokenizes its
prompts: text from traces, hints and observations never becomes a special token.

Which diagnoses a training signal accepts (`check_trajectory`): ``hero`` and ``hero+grpo`` need
hindsight diagnoses (an LLM, ``self``, ``grounded`` or ``reference`` reflector) and refuse the
baselines' ``env-feedback`` / ``demo`` ones; ``env-feedback`` and ``demo`` accept only their own
reflector's; ``grpo`` needs rewards, not diagnoses. A wrong kind is an error (never a silent
fallback): mixing them would make the comparison between signals meaningless.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from jinja2 import TemplateError

from hero_agents.chat_template import ChatTemplate
from hero_agents.errors import DistillationError, NothingToTrain
from hero_agents.trajectory import Diagnosis, Message, Trajectory, Turn

logger = logging.getLogger(__name__)

Signal = Literal["hero", "env-feedback", "demo", "grpo", "hero+grpo"]
"""Training signals: the three self-distillation teachers, the outcome baseline, and a blend."""

SIGNALS: tuple[str, ...] = ("hero", "env-feedback", "demo", "grpo", "hero+grpo")

BASELINE_REFLECTORS = {"env-feedback": "env-feedback", "demo": "demo"}
"""Signal -> the reflector whose diagnoses that baseline signal trains on."""


@dataclass
class TurnExample:
    """One turn, tokenized: the student's and the teacher's prompt and the shared completion."""

    trajectory_id: str
    turn_index: int
    prompt_ids: list[int]
    completion_ids: list[int]
    teacher_prompt_ids: list[int] | None
    """None without a teacher (the ``grpo`` signal, the warm start)."""
    behaviour_logprobs: list[float] | None
    """Raw log-probs of `completion_ids` under the policy that sampled them, when captured."""
    completion_source: Literal["captured", "retokenized", "teacher"]
    """`teacher`: the teacher's own action under the note (`sequence_kd`)."""
    drift: str | None = None
    """Why the captured tokens differ from the template's tokenization; None when they agree."""
    opening_length: int = 1
    """Leading completion tokens that open the action (`action_opening_length`)."""


@dataclass
class TrajectoryExample:
    """All turns of one trajectory, with what the outcome-reward signal needs."""

    trajectory_id: str
    task_id: str | None
    reward: float | None
    turns: list[TurnExample]
    advantage: float = 0.0
    """GRPO advantage of this trajectory within its task's group (set by the trainer)."""


@dataclass
class ScoringSequence:
    """One row of a forward pass and the actions it scores.

    ``spans[i] = (start, length)``: the completion of turn ``turn_indices[i]`` is
    ``input_ids[start : start + length]``; its tokens are predicted by the logits at positions
    ``start - 1 ... start + length - 2``.
    """

    input_ids: list[int]
    spans: list[tuple[int, int]] = field(default_factory=list)
    turn_indices: list[int] = field(default_factory=list)

    def logit_positions(self) -> list[int]:
        """Positions whose logits predict the scored action tokens, in turn order."""
        return [p for start, n in self.spans for p in range(start - 1, start + n - 1)]


def _fail(trajectory: Trajectory, turn: int | None, problem: str) -> DistillationError:
    where = f"trajectory {trajectory.id!r}" + (f", turn {turn}" if turn is not None else "")
    return DistillationError(f"{where}: {problem}")


def _reflector_kind(reflector: str) -> str:
    return reflector.split(":", 1)[0]


def check_trajectory(trajectory: Trajectory, signal: str) -> None:
    """Refuse a trajectory that `signal` cannot train on; the error names trajectory and turn."""
    if not trajectory.turns:
        raise _fail(trajectory, None, "has no turns")
    if signal in ("grpo", "hero+grpo") and trajectory.reward is None:
        raise _fail(trajectory, None, f"has no reward, which signal {signal!r} needs")
    if signal == "grpo":
        return
    diagnoses = trajectory.diagnoses
    if not diagnoses:
        raise _fail(
            trajectory, None, f"has no diagnoses, which signal {signal!r} needs: run `hero reflect`"
        )
    if len(diagnoses) != len(trajectory.turns):
        raise _fail(
            trajectory,
            min(len(diagnoses), len(trajectory.turns)),
            f"{len(diagnoses)} diagnoses for {len(trajectory.turns)} turns",
        )
    expected = BASELINE_REFLECTORS.get(signal)
    for turn, diagnosis in zip(trajectory.turns, diagnoses, strict=True):
        if diagnosis.turn_index != turn.index:
            raise _fail(trajectory, turn.index, f"its diagnosis is for turn {diagnosis.turn_index}")
        kind = _reflector_kind(diagnosis.reflector)
        if expected is not None and kind != expected:
            raise _fail(
                trajectory,
                turn.index,
                f"signal {signal!r} trains on diagnoses of the {expected!r} reflector, got one "
                f"from {diagnosis.reflector!r}: reflect with `--reflector {expected}`",
            )
        if expected is None and kind in BASELINE_REFLECTORS.values():
            raise _fail(
                trajectory,
                turn.index,
                f"signal {signal!r} needs hindsight diagnoses from an LLM reflector, got the "
                f"{diagnosis.reflector!r} baseline's: use `--signal {kind}` to train that baseline",
            )


def hindsight_note(diagnosis: Diagnosis, template: str) -> str:
    """The text the teacher reads for one turn: `template` filled from the diagnosis."""
    return template.format(
        hint=diagnosis.hint.strip(),
        cause=diagnosis.cause or "",
        necessity=diagnosis.necessity,
        validity=diagnosis.validity,
    )


NotePlacement = Literal["user-message", "system-message", "system-prompt"]
"""Where the teacher reads its note: a separate user or system message right before acting, or
appended to the conversation's system prompt."""

NOTE_PLACEMENTS: tuple[str, ...] = ("user-message", "system-message", "system-prompt")


def teacher_context(
    messages: Sequence[Message], note: str, *, placement: NotePlacement = "user-message"
) -> list[Message]:
    """The turn's context as the teacher reads it, with the hindsight note placed.

    ``user-message``/``system-message``: an extra message after the last tool or user message,
    right before acting (a separate message keeps tool results intact: a note appended inside a
    ``<tool_response>`` would pose as tool output). ``system-prompt``: the note closes the
    system prompt (a new system message when the context has none), away from the point where
    the action opens: measured on the default model, it keeps the probability of the token that
    opens a tool call where a note right before acting halves it.
    """
    last = messages[-1].get("role") if messages else None
    if last not in ("tool", "user"):
        raise ValueError(f"the context ends with a {last!r} message, not a tool or user message")
    if placement == "system-prompt":
        if messages[0].get("role") == "system":
            system = messages[0]
            content = f"{system.get('content') or ''}\n\n{note}"
            return [{**system, "content": content}, *messages[1:]]
        return [{"role": "system", "content": note}, *messages]
    role = "user" if placement == "user-message" else "system"
    return [*messages, {"role": role, "content": note}]


def action_opening_length(tokenizer: Any, completion_ids: Sequence[int]) -> int:
    """How many leading tokens open the action: for a tool call, every token before the call's
    arguments (the tag that opens it and the tool's name); for any other action, the first.
    These decide *whether* and *which* tool is called, apart from *how*."""
    start = tokenizer.decode(list(completion_ids)).find('"arguments"')
    if start < 0:
        return 1
    opening = 0  # the tokens that end before the arguments' key starts
    while len(tokenizer.decode(list(completion_ids[: opening + 1]))) <= start:
        opening += 1
    return max(1, opening)


def _completion_text(template: ChatTemplate, turn: Turn, prompt: str) -> str:
    """The template's rendering of the action, up to and including the end-of-turn token."""
    full = template.render([*turn.messages, turn.action], turn.tools)
    if not full.startswith(prompt):
        raise ValueError(
            "the chat template does not render the action as a continuation of the prompt"
        )
    text = full[len(prompt) :]
    eos = template.tokenizer.eos_token
    if eos and eos in text:  # the template's: rendered messages hold no special-token string
        text = text[: text.index(eos) + len(eos)]
    return text


def build_turn_example(
    trajectory: Trajectory,
    turn: Turn,
    tokenizer: Any,
    *,
    note: str | None,
    note_placement: NotePlacement = "user-message",
    on_drift: Literal["warn", "error"] = "warn",
) -> TurnExample:
    """Tokenize one turn; `note` is the teacher's hindsight note (None: no teacher; empty:
    the teacher sees the student's prompt)."""
    action = turn.action
    silent = not (action.get("content") or "").strip() and not action.get("tool_calls")
    if silent and turn.tokens is None:
        # A policy that ended its turn at once is trained on the tokens it emitted; an
        # imported message with nothing in it has no behaviour to learn from.
        raise _fail(trajectory, turn.index, "empty action (no content and no tool calls)")
    if turn.tokens is not None and not turn.tokens.completion_token_ids:
        raise _fail(trajectory, turn.index, "empty action (no captured completion tokens)")
    for position, message in enumerate([*turn.messages, action]):
        if not isinstance(message.get("content") or "", str):
            raise _fail(
                trajectory, turn.index, f"message {position} has non-text content (text only)"
            )
    template = ChatTemplate(tokenizer)
    try:
        teacher = teacher_context(turn.messages, note or "", placement=note_placement)
        prompt = template.render(turn.messages, turn.tools, add_generation_prompt=True)
        completion = _completion_text(template, turn, prompt)
        teacher_prompt = None if note is None else prompt  # an empty note: the student's
        if note:
            teacher_prompt = template.render(teacher, turn.tools, add_generation_prompt=True)
    except (ValueError, TemplateError, TypeError) as exc:
        raise _fail(trajectory, turn.index, str(exc)) from exc

    prompt_ids = template.encode(prompt)
    retokenized = template.encode(completion)
    drift: list[str] = []
    if turn.tokens is not None:
        completion_ids = list(turn.tokens.completion_token_ids)
        behaviour = turn.tokens.completion_logprobs
        source: Literal["captured", "retokenized"] = "captured"
        if completion_ids != retokenized:
            cut = retokenized[: len(completion_ids)] == completion_ids
            drift.append(
                "the captured completion stops before the end-of-turn token (max tokens?)"
                if cut
                else "the captured completion differs from the template's tokenization"
            )
        captured_prompt = turn.tokens.prompt_token_ids
        if captured_prompt is not None and list(captured_prompt) != prompt_ids:
            drift.append("the captured prompt differs from the rendered context")
    else:
        completion_ids, behaviour, source = retokenized, None, "retokenized"
        if template.encode(prompt + completion) != prompt_ids + completion_ids:
            drift.append("prompt and completion tokenize differently joined than apart")
    if not completion_ids:
        raise _fail(trajectory, turn.index, "empty action (renders to no tokens)")
    reason = "; ".join(drift) or None
    if reason is not None:
        if on_drift == "error":
            raise _fail(trajectory, turn.index, f"token drift: {reason}")
        logger.debug("trajectory %r, turn %d: token drift: %s", trajectory.id, turn.index, reason)
    return TurnExample(
        trajectory_id=trajectory.id,
        turn_index=turn.index,
        prompt_ids=prompt_ids,
        completion_ids=completion_ids,
        teacher_prompt_ids=None if teacher_prompt is None else template.encode(teacher_prompt),
        behaviour_logprobs=list(behaviour) if behaviour is not None else None,
        completion_source=source,
        drift=reason,
        opening_length=action_opening_length(tokenizer, completion_ids),
    )


TurnSelection = Literal["all", "flagged"]
"""Which turns a distillation signal trains: every one, or those diagnosed invalid or
unnecessary plus a sampled share of the others (targeted distillation, as HinT-SD)."""


def _kept_share(trajectory_id: str, turn: int, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) for one turn (the same on every rerun)."""
    digest = hashlib.sha256(f"{seed}:{trajectory_id}:{turn}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def flagged_turns(trajectory: Trajectory, *, valid_share: float, seed: int = 0) -> list[int]:
    """Indices of the turns targeted distillation trains: every turn diagnosed ``invalid`` or
    ``unnecessary``, and each other turn with probability `valid_share` (stable per turn)."""
    if not 0.0 <= valid_share <= 1.0:
        raise ValueError(f"valid_share must be in [0, 1], got {valid_share}")
    chosen = []
    for diagnosis in trajectory.diagnoses or []:
        flagged = diagnosis.validity == "invalid" or diagnosis.necessity == "unnecessary"
        index = diagnosis.turn_index
        if flagged or _kept_share(trajectory.id, index, seed) < valid_share:
            chosen.append(index)
    return chosen


def build_examples(
    trajectories: Sequence[Trajectory],
    tokenizer: Any,
    *,
    signal: str = "hero",
    note_template: str = "{hint}",
    note_placement: NotePlacement = "user-message",
    on_drift: Literal["warn", "error"] = "warn",
    turns: TurnSelection = "all",
    valid_share: float = 0.0,
    seed: int = 0,
) -> list[TrajectoryExample]:
    """Check and tokenize every trajectory for `signal`; errors name the trajectory and turn.

    With ``turns="flagged"`` only `flagged_turns` are kept (a trajectory with none is left
    out); the others still shape the context of the later turns.
    """
    if not trajectories:
        raise DistillationError("no trajectories to train on")
    if turns == "flagged" and signal == "grpo":
        raise DistillationError("signal 'grpo' has no diagnoses to select turns by")
    examples = []
    for trajectory in trajectories:
        check_trajectory(trajectory, signal)
        selected = None
        if turns == "flagged":
            selected = set(flagged_turns(trajectory, valid_share=valid_share, seed=seed))
            if not selected:
                continue
        kept = []
        for turn in trajectory.turns:
            if selected is not None and turn.index not in selected:
                continue
            note = None
            if signal != "grpo":
                assert trajectory.diagnoses is not None  # checked above
                diagnosis = trajectory.diagnoses[turn.index]
                note = hindsight_note(diagnosis, note_template) if diagnosis.hint.strip() else ""
            kept.append(
                build_turn_example(
                    trajectory,
                    turn,
                    tokenizer,
                    note=note,
                    note_placement=note_placement,
                    on_drift=on_drift,
                )
            )
        examples.append(
            TrajectoryExample(
                trajectory_id=trajectory.id,
                task_id=trajectory.task_id,
                reward=trajectory.reward,
                turns=kept,
            )
        )
    if not examples:
        raise NothingToTrain(
            "no turn was diagnosed invalid or unnecessary (and none of the others was sampled): "
            "targeted distillation has nothing to train on"
        )
    drifted = [(e.trajectory_id, t) for e in examples for t in e.turns if t.drift is not None]
    if drifted:
        (trajectory_id, first), total = drifted[0], sum(len(e.turns) for e in examples)
        logger.warning(
            "token drift in %d of %d turns, trained on the captured tokens (first: trajectory "
            "%r, turn %d: %s)",
            len(drifted), total, trajectory_id, first.turn_index, first.drift,
        )  # fmt: skip
    return examples


def student_examples(
    trajectories: Sequence[Trajectory],
    tokenizer: Any,
    *,
    on_drift: Literal["warn", "error"] = "warn",
) -> list[TrajectoryExample]:
    """Tokenize every turn for supervised training: no teacher, no diagnoses needed (the
    warm start's demonstrations)."""
    if not trajectories:
        raise DistillationError("no trajectories to train on")
    examples = []
    for trajectory in trajectories:
        if not trajectory.turns:
            raise _fail(trajectory, None, "has no turns")
        turns = [
            build_turn_example(trajectory, turn, tokenizer, note=None, on_drift=on_drift)
            for turn in trajectory.turns
        ]
        examples.append(
            TrajectoryExample(trajectory.id, trajectory.task_id, trajectory.reward, turns)
        )
    return examples


def student_sequences(example: TrajectoryExample, *, pack: bool = True) -> list[ScoringSequence]:
    """The rows that score every turn of `example` as its student.

    With `pack`, a turn joins the current row when the row (previous prompt + completion) is a
    token prefix of its prompt, i.e. the history was only appended to; otherwise it starts a new
    row. Without `pack`, one row per turn.
    """
    rows: list[ScoringSequence] = []
    for turn in example.turns:
        row = rows[-1] if rows and pack else None
        if row is not None and turn.prompt_ids[: len(row.input_ids)] == row.input_ids:
            row.input_ids = turn.prompt_ids + turn.completion_ids
        else:
            row = ScoringSequence(turn.prompt_ids + turn.completion_ids)
            rows.append(row)
        row.spans.append((len(turn.prompt_ids), len(turn.completion_ids)))
        row.turn_indices.append(turn.turn_index)
    return rows


def teacher_sequences(example: TrajectoryExample) -> list[ScoringSequence]:
    """One row per turn: the teacher prompt followed by the same completion as the student's."""
    rows = []
    for turn in example.turns:
        if turn.teacher_prompt_ids is None:
            raise ValueError(f"turn {turn.turn_index} of {example.trajectory_id!r} has no teacher")
        rows.append(
            ScoringSequence(
                turn.teacher_prompt_ids + turn.completion_ids,
                [(len(turn.teacher_prompt_ids), len(turn.completion_ids))],
                [turn.turn_index],
            )
        )
    return rows
