"""What an import did: records read, trajectories written, and every record it could not use.

Broken or unknown records never stop an import: each becomes a `Problem` (where, what kind,
why), counted per kind, with the first few kept as examples and all of them passed to an
optional sink (``hero import --problems FILE``). Records that are valid but carry nothing a
trajectory needs (a LangSmith chain run, a span without GenAI data) are counted as ignored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hero_agents.errors import HeroError


@dataclass(frozen=True)
class Problem:
    """A record (or a group of records) that was not imported."""

    location: str
    """``file:line`` (or ``file[index]``), plus the record's id where it has one."""
    kind: str
    """A short category, e.g. ``invalid JSON`` or ``unreadable llm run``."""
    message: str


class RecordError(HeroError):
    """A record or trace cannot be imported; carries the `Problem` to report."""

    def __init__(self, location: str, kind: str, message: str) -> None:
        super().__init__(f"{location}: {kind}: {message}")
        self.problem = Problem(location, kind, message)


@dataclass
class ImportReport:
    """Counts of an import; `problems` per kind, with up to `examples_per_kind` examples."""

    records: int = 0
    trajectories: int = 0
    turns: int = 0
    rewarded: int = 0
    """Trajectories whose reward came from an outcome label."""
    failed_calls: int = 0
    """Model calls that ended in an error, with no action to learn from."""
    ignored: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[Problem]] = field(default_factory=dict)
    examples_per_kind: int = 3
    sink: Callable[[Problem], None] | None = None

    def problem(self, problem: Problem) -> None:
        self.problems[problem.kind] += 1
        kept = self.examples.setdefault(problem.kind, [])
        if len(kept) < self.examples_per_kind:
            kept.append(problem)
        if self.sink is not None:
            self.sink(problem)

    def ignore(self, reason: str) -> None:
        self.ignored[reason] += 1

    @property
    def problem_count(self) -> int:
        return sum(self.problems.values())
