"""Grounded reflection: diagnoses of what the trace itself proves, and of nothing else.

`prove_turn` reads one turn (its context, tools, action, captured tokens and observation) and
returns a `Finding`: the facts (`Fact`) the trace proves about the action. No reference
solution is needed, so it works on production traces as well as on rollouts.

- a tool error in the observation: invalid; the cause is the error text;
- a malformed tool call (``invalid_tool_calls``, or arguments that are not a JSON object):
  invalid; the hint quotes the parse error and where the text breaks;
- a cut-off action: its captured tokens end without an end-of-turn token (known only when
  ``end_of_turn_ids`` are given), or its text ends inside an opened ``<tool_call>`` block:
  invalid; the hint says after how many tokens;
- a call that breaks the turn's tool schemas (unknown tool, unknown or missing argument, wrong
  JSON type, a value outside an enum or any other JSON-schema rule): invalid; the hint names the
  tool's signature. A turn recorded without tools has no schema, so nothing is proven of it;
- a call equal (same name and arguments) to an earlier one whose result is already in the
  context: a repeat; the action is unnecessary when every call it makes is one.

`GroundedReflector` writes those findings as diagnoses. Alone (``grounded``), a turn with
nothing proven gets a neutral diagnosis with an empty hint, which gives its teacher exactly the
student's context (no signal). Over another reflector (``grounded+SPEC``), proven facts replace
its labels where they conflict (recorded in `Diagnosis.overridden`) and lead its hint.
"""

from __future__ import annotations

import contextlib
import difflib
import json
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jsonschema

from hero_agents.reflection.base import ReflectionResult, Reflector
from hero_agents.reflection.prompt import content_text, tool_call_names
from hero_agents.trajectory import Diagnosis, Message, ToolSchema, Trajectory, Turn, is_tool_error

TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
"""The tool-call tags of the Hermes / Qwen format the policy backends write and parse."""

FactKind = Literal["tool_error", "malformed_call", "cut_off", "schema_violation", "repeat"]

_HINT_ORDER: tuple[FactKind, ...] = (
    "cut_off",
    "malformed_call",
    "schema_violation",
    "tool_error",
    "repeat",
)
"""The order facts lead a hint in: what to fix in the action first, then what came back."""
_CAUSE_ORDER: tuple[FactKind, ...] = (
    "tool_error",
    "cut_off",
    "malformed_call",
    "schema_violation",
    "repeat",
)
"""Whose words become the cause: the environment's own error text first."""

_CALL_CHARS = 120
_ERROR_CHARS = 200
_SIGNATURE_CHARS = 300


@dataclass(frozen=True)
class Fact:
    """One thing the trace proves about a turn's action."""

    kind: FactKind
    cause: str
    """What was wrong, short, in the trace's own words where it has them."""
    hint: str
    """One or two sentences for the teacher: what was wrong and, where the trace says, what
    is right."""


@dataclass(frozen=True)
class Finding:
    """What the trace proves about one turn's action (nothing, when `facts` is empty)."""

    turn_index: int
    facts: tuple[Fact, ...] = ()
    unnecessary: bool = False
    """Every call of the action repeats an earlier call whose result is in the context."""

    @property
    def invalid(self) -> bool:
        """A tool error, a malformed or cut-off call, or a schema violation is proven."""
        return any(fact.kind != "repeat" for fact in self.facts)

    @property
    def proven_bad(self) -> bool:
        """The action is proven invalid or unnecessary."""
        return self.invalid or self.unnecessary

    @property
    def cause(self) -> str | None:
        """Why the action is bad, when it is proven bad; else None."""
        if not self.proven_bad:
            return None
        return _ordered(self.facts, _CAUSE_ORDER)[0].cause

    def hint(self, max_chars: int = 600) -> str:
        """The facts' hints, most actionable first, cut to `max_chars`; empty if none."""
        return _cut(" ".join(fact.hint for fact in _ordered(self.facts, _HINT_ORDER)), max_chars)


def _ordered(facts: Sequence[Fact], order: Sequence[FactKind]) -> list[Fact]:
    return sorted(facts, key=lambda fact: order.index(fact.kind))


def _cut(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, marked with '…'."""
    text = text.strip()
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - 1)]
    if " " in head:
        head = head[: head.rindex(" ")]
    return head.rstrip() + "…"


def prove_turn(turn: Turn, *, end_of_turn_ids: Collection[int] = ()) -> Finding:
    """What the trace proves about `turn`'s action (see the module docstring).

    Earlier calls are read from the turn's own context (what the policy saw), so a repeat is
    proven only when the earlier result is really there. `end_of_turn_ids` are the policy's
    tokens that end a turn (its eos and ``<|im_end|>``); without them, a cut-off is proven only
    by an unclosed ``<tool_call>`` block.
    """
    action = turn.action
    tools = _tools_by_name(turn.tools)
    calls = [_ParsedCall.of(call) for call in action.get("tool_calls") or []]
    malformed = action.get("invalid_tool_calls") or []
    facts = [
        *_cut_off(turn, set(end_of_turn_ids), reported=bool(malformed)),
        *(_malformed(entry, tools) for entry in malformed),
    ]
    named: set[str] = set()  # calls a fact has already quoted
    for call in calls:
        if call.error is not None:
            facts.append(_malformed_arguments(call, tools))
        elif tools and (violations := _schema_violation(call, tools)):
            facts.extend(violations)
            named.add(call.id or "")
    facts.extend(_tool_errors(turn, calls, named))
    repeats = _repeats(turn, calls)
    facts.extend(repeats)
    unnecessary = bool(calls) and len(repeats) == len(calls) and not malformed
    return Finding(turn_index=turn.index, facts=tuple(facts), unnecessary=unnecessary)


# -- the calls of an action -------------------------------------------------------------------


@dataclass(frozen=True)
class _ParsedCall:
    id: str | None
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: Any
    error: str | None
    """Why the arguments are not a JSON object, when they are not."""

    @classmethod
    def of(cls, call: Message) -> _ParsedCall:
        function = call.get("function") or {}
        raw = function.get("arguments")
        arguments, error = raw, None
        if isinstance(raw, str):
            try:
                arguments = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError as exc:
                arguments, error = None, f"{exc.msg} at character {exc.pos}{_near(raw, exc.pos)}"
        if raw is None:
            arguments = {}
        if error is None and not isinstance(arguments, dict):
            arguments, error = None, "the arguments are not a JSON object"
        return cls(call.get("id"), str(function.get("name")), arguments, raw, error)

    @property
    def key(self) -> str | None:
        """The call's name and arguments, canonical (None when they did not parse)."""
        if self.arguments is None:
            return None
        return json.dumps([self.name, self.arguments], sort_keys=True, ensure_ascii=False)

    @property
    def text(self) -> str:
        """The call as ``name(key=value, ...)``, shortened."""
        if self.arguments is None:
            return _cut(f"{self.name}({self.raw_arguments})", _CALL_CHARS)
        arguments = ", ".join(
            f"{key}={json.dumps(value, ensure_ascii=False)}"
            for key, value in self.arguments.items()
        )
        return _cut(f"{self.name}({arguments})", _CALL_CHARS)


def _near(text: str, position: int) -> str:
    """Where a JSON text breaks: the characters around `position`, the break marked."""
    before, after = text[max(0, position - 20) : position], text[position : position + 10]
    if not (before + after).strip():
        return ""
    excerpt = f"…{before.rstrip()} <here> {after.lstrip()}…".replace("\n", "\\n")
    return f", near {excerpt}"


# -- cut-off and malformed calls ------------------------------------------------------------


def _cut_off(turn: Turn, end_of_turn_ids: set[int], *, reported: bool) -> list[Fact]:
    """A cut-off action; or a ``<tool_call>`` left open by an action that did end its turn."""
    text = content_text(turn.action.get("content"))
    unclosed = text.rfind(TOOL_CALL_OPEN) > text.rfind(TOOL_CALL_CLOSE)
    tokens = turn.tokens.completion_token_ids if turn.tokens is not None else []
    ended = tokens[-1] in end_of_turn_ids if tokens and end_of_turn_ids else None
    if turn.tokens is not None and turn.tokens.finish_reason in ("stop", "length"):
        ended = turn.tokens.finish_reason == "stop"  # the policy said why it stopped
    inside = f", inside an unclosed {TOOL_CALL_OPEN} block" if unclosed else ""
    if ended is False:
        return [
            Fact(
                "cut_off",
                f"cut off after {len(tokens)} tokens, before the end of its turn{inside}",
                f"Your action was cut off after {len(tokens)} tokens, before it ended{inside}: "
                "the token budget ran out. Write a shorter action that ends.",
            )
        ]
    if unclosed and ended is None:
        after = f" after {len(tokens)} tokens" if tokens else ""
        return [
            Fact(
                "cut_off",
                f"cut off{after}: a {TOOL_CALL_OPEN} block is opened and never closed",
                f"Your action stops{after} inside a {TOOL_CALL_OPEN} block that is never closed: "
                "it was cut off. Write a shorter call that ends with "
                f"{TOOL_CALL_CLOSE}.",
            )
        ]
    if unclosed and not reported:  # the policy ended its turn with the call still open
        return [
            Fact(
                "malformed_call",
                f"a {TOOL_CALL_OPEN} block is never closed",
                f"Your tool call is never closed: end it with {TOOL_CALL_CLOSE}.",
            )
        ]
    return []


def _malformed(entry: Message, tools: dict[str, ToolSchema]) -> Fact:
    """A call the backend could not parse (an entry of the action's ``invalid_tool_calls``)."""
    error = _cut(str(entry.get("error") or "it could not be parsed"), _ERROR_CHARS)
    body = entry.get("arguments")
    where = ""
    if isinstance(body, str):
        try:
            json.loads(body)
        except json.JSONDecodeError as exc:
            where = _near(body, exc.pos)
    name = entry.get("name")
    signature = f" Use {_signature(tools[name])}." if name in tools else ""
    return Fact(
        "malformed_call",
        f"malformed tool call: {error}",
        f"Your tool call could not be parsed: {error}{where}.{signature}",
    )


def _malformed_arguments(call: _ParsedCall, tools: dict[str, ToolSchema]) -> Fact:
    signature = f" Use {_signature(tools[call.name])}." if call.name in tools else ""
    return Fact(
        "malformed_call",
        f"the arguments of {call.name} are not valid: {call.error}",
        f"The arguments of your {call.name} call are not a valid JSON object: "
        f"{call.error}.{signature}",
    )


# -- tool schemas -------------------------------------------------------------------------------


def _function(tool: ToolSchema) -> dict[str, Any]:
    function = tool.get("function", tool)
    return function if isinstance(function, dict) else {}


def _tools_by_name(tools: Sequence[ToolSchema]) -> dict[str, ToolSchema]:
    return {str(_function(tool).get("name")): tool for tool in tools if _function(tool).get("name")}


def _parameters(tool: ToolSchema) -> dict[str, Any]:
    parameters = _function(tool).get("parameters")
    return parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}


def _type_text(schema: Any) -> str:
    """A property's type as a reader would write it: ``string``, ``"a"|"b"``, ``integer[]``."""
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema:
        return "|".join(json.dumps(value, ensure_ascii=False) for value in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"], ensure_ascii=False)
    kind = schema.get("type")
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"{_type_text(schema['items'])}[]"
    if isinstance(kind, list):
        return "|".join(str(k) for k in kind)
    if kind:
        return str(kind)
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return "|".join(_type_text(option) for option in schema[key])
    if isinstance(schema.get("$ref"), str):
        return schema["$ref"].rsplit("/", 1)[-1]
    return "any"


def _signature(tool: ToolSchema) -> str:
    """``name(required: type, optional?: type, ...)`` from a tool's schema."""
    parameters = _parameters(tool)
    properties = parameters.get("properties") or {}
    required = set(parameters.get("required") or [])
    arguments = ", ".join(
        f"{name}{'' if name in required else '?'}: {_type_text(schema)}"
        for name, schema in properties.items()
    )
    return _cut(f"{_function(tool).get('name')}({arguments})", _SIGNATURE_CHARS)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _value_text(value: Any) -> str:
    return _cut(json.dumps(value, ensure_ascii=False), 60)


def _where(error: jsonschema.ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _violations(error: jsonschema.ValidationError) -> list[str]:
    """One validation error of a call's arguments, in words."""
    where, value = _where(error), error.instance
    inside = f" in '{where}'" if where else ""
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in value]
        return [f"missing required argument '{name}'{inside}" for name in missing]
    if error.validator == "additionalProperties" and isinstance(value, dict):
        known = error.schema.get("properties") or {}
        return [f"unknown argument '{name}'{inside}" for name in value if name not in known]
    options: list[Any] = []
    if error.validator == "type":
        options = [error.validator_value]
    elif error.validator in ("anyOf", "oneOf") and error.context:
        if all(sub.validator == "type" for sub in error.context):
            options = [sub.validator_value for sub in error.context]
    if options:
        expected = " or ".join(
            "|".join(option) if isinstance(option, list) else str(option) for option in options
        )
        return [f"'{where}' must be {expected}, got {_value_text(value)} ({_json_type(value)})"]
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        choices = ", ".join(_value_text(choice) for choice in allowed)
        return [f"'{where}' must be one of {choices}, got {_value_text(value)}"]
    return [f"'{where or 'arguments'}': {_cut(error.message, _ERROR_CHARS)}"]


def _schema_violation(call: _ParsedCall, tools: dict[str, ToolSchema]) -> list[Fact]:
    if call.name not in tools:
        names = list(tools)
        # Only a near-identical name (a typo) is named: likeness in spelling is not in meaning.
        closest = difflib.get_close_matches(call.name, names, n=1, cutoff=0.85)
        suggestion = f" The closest name is {_signature(tools[closest[0]])}." if closest else ""
        return [
            Fact(
                "schema_violation",
                f"unknown tool '{call.name}'",
                _cut(f"There is no tool '{call.name}'; the tools are: {', '.join(names)}.", 300)
                + suggestion,
            )
        ]
    schema = dict(_parameters(tools[call.name]))
    schema.setdefault("additionalProperties", False)  # a function takes no other arguments
    validator_class = jsonschema.validators.validator_for(schema)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError:
        return []  # a broken schema proves nothing about the call
    properties = schema.get("properties") or {}
    arguments = {  # passing an argument's default of null is the same as leaving it out
        key: value
        for key, value in (call.arguments or {}).items()
        if not (value is None and isinstance(properties.get(key), dict)
                and "default" in properties[key] and properties[key]["default"] is None)
    }  # fmt: skip
    errors = sorted(
        validator_class(schema).iter_errors(arguments),
        key=lambda error: [str(part) for part in error.absolute_path],
    )
    problems = [problem for error in errors for problem in _violations(error)]
    if not problems:
        return []
    listed = "; ".join(problems)
    return [
        Fact(
            "schema_violation",
            _cut(f"{call.name}: {listed}", _ERROR_CHARS),
            f"{call.text} does not fit the schema of {call.name}: {_cut(listed, _ERROR_CHARS)}. "
            f"Its signature is {_signature(tools[call.name])}.",
        )
    ]


# -- what came back, and what was already known ---------------------------------------------


def _tool_errors(turn: Turn, calls: Sequence[_ParsedCall], named: set[str]) -> list[Fact]:
    """The tool errors in the observation; a call quoted by an earlier fact is not quoted again."""
    by_id = {call.id: call for call in calls if call.id}
    names = tool_call_names([turn.action])
    facts = []
    for message in turn.observation:
        if not is_tool_error(message):
            continue
        error = content_text(message.get("content")).strip() or "(no error text)"
        call_id = message.get("tool_call_id", "")
        call = by_id.get(call_id)
        what = call.text if call else message.get("name") or names.get(call_id) or "a tool call"
        said = "It" if len(calls) == 1 and call is not None and call.id in named else what
        facts.append(
            Fact(
                "tool_error",
                _cut(error, _ERROR_CHARS),
                f"{said} failed: {_cut(error, _ERROR_CHARS)}",
            )
        )
    return facts


def _repeats(turn: Turn, calls: Sequence[_ParsedCall]) -> list[Fact]:
    answered = {m.get("tool_call_id") for m in turn.messages if m.get("role") == "tool"}
    known = {
        parsed.key
        for message in turn.messages
        if message.get("role") == "assistant"
        for parsed in map(_ParsedCall.of, message.get("tool_calls") or [])
        if parsed.id in answered and parsed.key is not None
    }
    return [
        Fact(
            "repeat",
            f"repeats {call.text}, whose result is already in the context",
            f"{call.text} repeats an earlier call whose result is already in the context: "
            "use that result instead of calling again.",
        )
        for call in calls
        if call.key is not None and call.key in known
    ]


# -- the reflector ----------------------------------------------------------------------------


def _lead(proven: str, other: str, limit: int) -> str:
    """`proven` first, then as much of `other` as fits in `limit` characters."""
    if not proven:
        return _cut(other, limit)
    room = limit - len(proven) - 1
    rest = _cut(other, room) if room >= 20 else ""
    return f"{proven} {rest}" if rest else proven


class GroundedReflector(Reflector):
    """Diagnoses from what each trace proves (`prove_turn`), alone or over `inner`.

    Alone, a turn with nothing proven is diagnosed necessary and valid with an empty hint (its
    teacher sees the student's context). Over `inner`, each of its diagnoses keeps its labels,
    cause and hint except where a proven fact contradicts them: then the proven label and cause
    replace them (the replaced values go to ``Diagnosis.overridden``), and the proven hint
    leads, followed by as much of `inner`'s hint as fits in `max_hint_chars`.
    """

    def __init__(
        self,
        inner: Reflector | None = None,
        *,
        end_of_turn_ids: Collection[int] = (),
        max_hint_chars: int = 600,
        max_concurrency: int | None = None,
    ) -> None:
        self.inner = inner
        self.end_of_turn_ids = frozenset(end_of_turn_ids)
        self.max_hint_chars = max_hint_chars
        self.name = "grounded" if inner is None else f"grounded+{inner.name}"
        default = inner.max_concurrency if inner is not None else 1
        self.max_concurrency = max_concurrency if max_concurrency is not None else default

    def findings(self, trajectory: Trajectory) -> list[Finding]:
        """What the trace proves about each turn of `trajectory`."""
        return [prove_turn(turn, end_of_turn_ids=self.end_of_turn_ids) for turn in trajectory.turns]

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        if self.inner is None:
            yield
            return
        async with self.inner.session():
            yield

    async def reflect_one(self, trajectory: Trajectory) -> ReflectionResult:
        findings = self.findings(trajectory)
        if self.inner is None:
            return ReflectionResult.diagnosed(
                trajectory, [self._alone(finding) for finding in findings]
            )
        result = await self.inner.reflect_one(trajectory)
        if not result.ok:
            return result
        diagnoses = [
            self._over(finding, diagnosis)
            for finding, diagnosis in zip(findings, result.diagnoses, strict=True)
        ]
        return ReflectionResult.diagnosed(
            result.trajectory, diagnoses, usage=result.usage, cached=result.cached
        )

    def _alone(self, finding: Finding) -> Diagnosis:
        return Diagnosis(
            turn_index=finding.turn_index,
            necessity="unnecessary" if finding.unnecessary else "necessary",
            validity="invalid" if finding.invalid else "valid",
            cause=finding.cause,
            hint=finding.hint(self.max_hint_chars),
            reflector=self.name,
        )

    def _over(self, finding: Finding, diagnosis: Diagnosis) -> Diagnosis:
        proven: dict[str, Any] = {}
        if finding.invalid:
            proven["validity"] = "invalid"
        if finding.unnecessary:
            proven["necessity"] = "unnecessary"
        if finding.invalid or (finding.unnecessary and diagnosis.cause is None):
            proven["cause"] = finding.cause
        overridden = {
            field: getattr(diagnosis, field)
            for field, value in proven.items()
            if getattr(diagnosis, field) != value
        }
        return Diagnosis.model_validate(
            {
                **diagnosis.model_dump(),
                **proven,
                "hint": _lead(
                    finding.hint(self.max_hint_chars), diagnosis.hint, self.max_hint_chars
                ),
                "reflector": f"grounded+{diagnosis.reflector}",
                "overridden": overridden or None,
            }
        )

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
