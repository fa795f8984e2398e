"""The import pipeline: production logs in, one `Trajectory` per trace or thread out.

Records are streamed shard by shard (`sources`). A format splits each record into items; items
that are complete on their own (an OpenAI conversation line) become segments at once, the
others are grouped by trace on disk (`SpillGrouper`) and become one segment per trace. A
segment that belongs to a thread is grouped again, by thread, and each thread becomes one
trajectory; every other segment is one trajectory. Trajectories are written as each is
finished, so memory holds about ``memory_bytes`` of records (plus the largest single trace or
thread) whatever the size of the input, and a bad record is reported, never fatal.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hero_agents.adapters.importers.assembly import Segment, assemble
from hero_agents.adapters.importers.formats import FormatContext
from hero_agents.adapters.importers.grouping import SpillGrouper
from hero_agents.adapters.importers.outcome import OutcomeLabels
from hero_agents.adapters.importers.registry import get_format
from hero_agents.adapters.importers.report import ImportReport, Problem, RecordError
from hero_agents.adapters.importers.sources import BadRecord, expand_sources, read_records
from hero_agents.trajectory import Trajectory

DEFAULT_MEMORY_BYTES = 32 << 20


@dataclass(frozen=True)
class ImportSettings:
    """How to read production logs into trajectories."""

    outcome: OutcomeLabels | None = None
    """Fields that hold outcome labels, which become the reward (None: no reward)."""
    thread_keys: tuple[str, ...] | None = None
    """Where a record names its thread (None: the format's defaults)."""
    threads: bool = True
    """Join the traces of a thread into one trajectory (else one per trace)."""
    nodes: frozenset[str] | None = None
    """Keep only the model calls of these LangGraph nodes (None: every call)."""
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    """About how many bytes of records grouping may hold in memory at once."""


_DATA_ERRORS = (TypeError, KeyError, AttributeError, IndexError, ValueError, RecursionError)
"""What a record of an unexpected shape (or nested too deeply) raises deep inside a format's
code."""


@contextlib.contextmanager
def _isolated(report: ImportReport, location: str) -> Iterator[None]:
    """Report what goes wrong with one record or trace, and go on with the next."""
    try:
        yield
    except RecordError as error:
        report.problem(error.problem)
    except _DATA_ERRORS as error:
        message = f"{type(error).__name__}: {error}"
        report.problem(Problem(location, "unreadable record", message))


ProgressCallback = Callable[[str, int], None]
"""Called with ``("bytes", n)`` as input is read and ``("trajectories", 1)`` per one written."""


def import_traces(
    format_name: str,
    sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    write: Callable[[Trajectory], None],
    settings: ImportSettings | None = None,
    *,
    on_problem: Callable[[Problem], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    """Read `sources` (files, folders of shards or globs) in format `format_name`, pass each
    trajectory to `write`, and return what was done; every record that could not be used is
    in the report (and passed to `on_problem`)."""
    settings = settings or ImportSettings()
    trace_format = get_format(format_name)
    named = [sources] if isinstance(sources, str | os.PathLike) else list(sources)
    paths = [path for source in named for path in expand_sources(source)]
    report = ImportReport(sink=on_problem)
    context = FormatContext(
        report=report,
        outcome=settings.outcome,
        thread_keys=settings.thread_keys if settings.threads else (),
    )
    progress = on_progress or (lambda kind, amount: None)
    order = itertools.count()

    def emit(trajectory_id: str, segments: list[Segment]) -> None:
        trajectory = assemble(
            segments,
            trajectory_id=trajectory_id,
            format_name=trace_format.name,
            report=report,
            outcome=settings.outcome,
            nodes=settings.nodes,
        )
        if trajectory is not None:
            write(trajectory)
            report.trajectories += 1
            report.turns += len(trajectory.turns)
            progress("trajectories", 1)

    with tempfile.TemporaryDirectory(prefix="hero-import-") as scratch:
        traces = SpillGrouper(Path(scratch) / "traces", memory_bytes=settings.memory_bytes)
        threads = SpillGrouper(Path(scratch) / "threads", memory_bytes=settings.memory_bytes)

        def build(key: str | None, entries: list[tuple[str, Any]]) -> None:
            with _isolated(report, entries[0][0]):
                segment = trace_format.segment(key, entries, context)
                segment.order = next(order)
                if segment.thread is not None:
                    threads.add(segment.thread, segment.to_json())
                else:
                    emit(segment.key, [segment])

        try:
            for path in paths:
                for record in read_records(path):
                    report.records += 1
                    progress("bytes", record.size)
                    if isinstance(record, BadRecord):
                        report.problem(Problem(record.location, "invalid JSON", record.message))
                        continue
                    with _isolated(report, record.location):
                        for key, where, item in trace_format.items(
                            record.value, record.location, context
                        ):
                            if key is None:
                                build(None, [(where, item)])
                            else:
                                traces.add(key, [where, item])
            for key, entries in traces.groups():
                build(key, [(where, item) for where, item in entries])
            for thread, payloads in threads.groups():
                segments = [Segment.from_json(payload) for payload in payloads]
                with _isolated(report, segments[0].location):
                    emit(thread, segments)
        finally:
            traces.close()
            threads.close()
    return report
