"""What a trace format is to the import pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from hero_agents.adapters.importers.assembly import Segment
from hero_agents.adapters.importers.outcome import OutcomeLabels
from hero_agents.adapters.importers.report import ImportReport


@dataclass(frozen=True)
class FormatContext:
    """What a format needs besides the records: settings, and the report to count into."""

    report: ImportReport
    outcome: OutcomeLabels | None = None
    thread_keys: tuple[str, ...] | None = None
    """Paths of the thread id in a record (None: the format's defaults; empty: no threads)."""

    def threads(self, defaults: tuple[str, ...]) -> tuple[str, ...]:
        return defaults if self.thread_keys is None else self.thread_keys


class TraceFormat(Protocol):
    """Reads one log format into `Segment`s.

    `items` splits a parsed record into ``(trace key, location, item)`` triples; key None means
    the item is a segment on its own, otherwise the pipeline groups items by key (on disk, in
    bounded memory) and hands each group of ``(location, item)`` pairs to `segment`. Both
    raise `RecordError` for what they cannot read; `items` reports problems of parts of a
    record itself and goes on with the rest.
    """

    name: str
    description: str

    def items(
        self, value: Any, location: str, context: FormatContext
    ) -> Iterator[tuple[str | None, str, Any]]: ...

    def segment(
        self, key: str | None, entries: list[tuple[str, Any]], context: FormatContext
    ) -> Segment: ...
