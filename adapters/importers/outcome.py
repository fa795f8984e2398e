"""Outcome labels: a field of the production records (user feedback, a resolution flag) that
becomes the trajectory's reward.

A field is a dotted path into a record, e.g. ``feedback_stats.user_score.avg`` in a LangSmith
run or ``app.resolved`` in a span's attributes. Keys that themselves hold dots (OpenTelemetry
attribute names) are matched whole first, so ``gen_ai.evaluation.score.value`` finds that
attribute. Numbers are rewards as they are, booleans are 1 or 0, ``"true"``/``"false"`` and
numeric strings likewise; any other label needs a mapping (``--reward-label resolved=1``).
Without labels, the reward stays None and reflection relies on the observations alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hero_agents.errors import ConfigError

MISSING = object()
"""What `lookup` returns for a path that is not in the record."""


def lookup(record: Any, path: str) -> Any:
    """The value at dotted `path` in `record` (literal dotted keys first), or `MISSING`."""
    if not isinstance(record, Mapping):
        return MISSING
    if path in record:
        return record[path]
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in record:
            found = lookup(record[head], ".".join(parts[cut:]))
            if found is not MISSING:
                return found
    return MISSING


def find_first(records: Iterable[Any], paths: Sequence[str]) -> Any:
    """The value of the first path found, trying every record for a path before the next."""
    candidates = list(records)
    for path in paths:
        for record in candidates:
            value = lookup(record, path)
            if value is not MISSING and value is not None:
                return value
    return None


@dataclass(frozen=True)
class OutcomeLabels:
    """Which fields hold the outcome (first one found wins) and how labels map to rewards."""

    fields: tuple[str, ...]
    labels: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, fields: Sequence[str], labels: Sequence[str] = ()) -> OutcomeLabels:
        """From CLI options: field paths and ``LABEL=NUMBER`` mappings."""
        if not fields:
            raise ConfigError("--reward-label needs --reward FIELD to say where labels are")
        mapping: dict[str, float] = {}
        for text in labels:
            label, sep, number = text.rpartition("=")
            try:
                mapping[label] = float(number)
            except ValueError:
                sep = ""
            if not sep or not label:
                raise ConfigError(f"--reward-label {text!r}: expected LABEL=NUMBER, e.g. good=1")
        return cls(fields=tuple(fields), labels=mapping)

    def found(self, records: Iterable[Any]) -> dict[str, Any]:
        """Each label field found in `records`, by path, from the first record that has it."""
        candidates = list(records)
        values = {}
        for path in self.fields:
            value = find_first(candidates, [path])
            if value is not None:
                values[path] = value
        return values

    def reward(self, path: str, value: Any) -> float:
        """`value` of field `path` as a reward; `ValueError` says how to map an unknown one."""
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise ValueError(f"{path} is {value}, not a finite number")
            return float(value)
        if isinstance(value, str):
            if value in self.labels:
                return self.labels[value]
            lowered = value.strip().lower()
            if lowered in ("true", "false"):
                return float(lowered == "true")
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if math.isfinite(number):
                return number
            raise ValueError(
                f"{path} is {value!r}: map it to a reward with --reward-label {value}=NUMBER"
            )
        raise ValueError(f"{path} is a {type(value).__name__}, not a number or a label")
