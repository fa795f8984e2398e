"""Reading a reflector's reply into `Diagnosis` objects, tolerantly but never inventively.

The reply is data: it is decoded as JSON and checked field by field; nothing in it is
followed. Small slips are forgiven (code fences, prose around the JSON, a bare array instead
of ``{"diagnoses": [...]}``, "Necessary" for "necessary", ``turn`` for ``turn_index``). Anything
that would need a guess (a missing or extra turn, an unknown label, an empty hint) raises
`ReplyFormatError` whose message is written to be shown back to the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hero_agents.errors import ReflectionError
from hero_agents.trajectory import Diagnosis

_INDEX_KEYS = ("turn_index", "turn", "index")
_LABELS = {
    "necessity": {"necessary": "necessary", "unnecessary": "unnecessary"},
    "validity": {"valid": "valid", "invalid": "invalid"},
}
_NEGATIONS = {"notnecessary": "unnecessary", "notvalid": "invalid"}
_EMPTY_CAUSES = {"", "none", "null", "n/a", "na", "-"}


class ReplyFormatError(ReflectionError):
    """A reply could not be read as the requested diagnoses; the message says what was wrong."""


@dataclass(frozen=True)
class ParsedReply:
    diagnoses: list[Diagnosis]
    truncated_hints: int


def _decode(text: str) -> Any:
    stripped = text.strip()
    if not stripped:
        raise ReplyFormatError("the reply was empty")
    try:
        return json.loads(stripped)
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    first_error: json.JSONDecodeError | None = None
    for position, char in enumerate(stripped):
        if char not in "{[":
            continue
        try:
            value, _ = decoder.raw_decode(stripped, position)
        except json.JSONDecodeError as error:
            cut_off = error.pos >= len(stripped) - 1 or error.msg.startswith("Unterminated string")
            if first_error is None and cut_off:
                raise ReplyFormatError("the reply's JSON is cut off before its end") from None
            first_error = first_error or error
            continue
        if isinstance(value, dict | list):
            return value
    detail = f" ({first_error.msg} at character {first_error.pos})" if first_error else ""
    raise ReplyFormatError(f"the reply is not valid JSON{detail}")


def _entries(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("diagnoses"), list):
            return value["diagnoses"]
        if any(key in value for key in _INDEX_KEYS):
            return [value]
    raise ReplyFormatError('expected a JSON object {"diagnoses": [...]}')


def _label(entry: dict[str, Any], field: str, where: str) -> str:
    raw = entry.get(field)
    if not isinstance(raw, str):
        raise ReplyFormatError(f"{where}: {field!r} must be a string, got {raw!r}")
    key = "".join(raw.lower().split()).replace("_", "").replace("-", "")
    key = _NEGATIONS.get(key, key)
    if key not in _LABELS[field]:
        allowed = " or ".join(repr(label) for label in _LABELS[field])
        raise ReplyFormatError(f"{where}: {field!r} must be {allowed}, got {raw!r}")
    return _LABELS[field][key]


def _cut_words(text: str, limit: int) -> tuple[str, bool]:
    words = text.split()
    if len(words) <= limit:
        return " ".join(words), False
    return " ".join(words[:limit]) + " …", True


def parse_diagnoses(
    text: str,
    targets: Sequence[int],
    *,
    reflector: str,
    max_hint_words: int = 40,
) -> ParsedReply:
    """Diagnoses for exactly the turns in `targets`, read from a reply's text.

    Hints longer than 1.5 × `max_hint_words` words, and causes longer than `max_hint_words`
    words, are cut (counted in `ParsedReply.truncated_hints`).
    """
    entries = _entries(_decode(text))
    wanted = list(targets)
    problems: list[str] = []
    if len(entries) != len(wanted):
        problems.append(f"expected {len(wanted)} diagnoses (turns {wanted}), got {len(entries)}")
    by_index: dict[int, dict[str, Any]] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"entry {position} is not a JSON object")
            continue
        raw_index = next((entry[key] for key in _INDEX_KEYS if key in entry), None)
        index = (
            raw_index if isinstance(raw_index, int) and not isinstance(raw_index, bool) else None
        )
        if isinstance(raw_index, str) and raw_index.strip().isdigit():
            index = int(raw_index)
        if index is None:
            problems.append(f"entry {position} has no integer 'turn_index'")
        elif index in by_index:
            problems.append(f"turn {index} is diagnosed twice")
        elif index not in wanted:
            problems.append(f"turn {index} was not asked for (asked: {wanted})")
        else:
            by_index[index] = entry
    missing = [i for i in wanted if i not in by_index]
    if missing and not problems:
        problems.append(f"turns {missing} are missing")
    if problems:
        raise ReplyFormatError("; ".join(problems[:6]))

    diagnoses: list[Diagnosis] = []
    truncated = 0
    hint_cap = max_hint_words + max_hint_words // 2
    for index in wanted:
        entry = by_index[index]
        where = f"turn {index}"
        necessity = _label(entry, "necessity", where)
        validity = _label(entry, "validity", where)
        hint = entry.get("hint")
        if not isinstance(hint, str) or not hint.strip():
            raise ReplyFormatError(f"{where}: 'hint' must be a non-empty string")
        hint, cut = _cut_words(hint, hint_cap)
        truncated += cut
        cause = entry.get("cause")
        if cause is not None and not isinstance(cause, str):
            raise ReplyFormatError(f"{where}: 'cause' must be a string or null")
        if cause is not None:
            cause, _ = _cut_words(cause, max_hint_words)
            if cause.lower() in _EMPTY_CAUSES:
                cause = None
        diagnoses.append(
            Diagnosis(
                turn_index=index,
                necessity=necessity,
                validity=validity,
                cause=cause,
                hint=hint,
                reflector=reflector,
            )
        )
    return ParsedReply(diagnoses=diagnoses, truncated_hints=truncated)
