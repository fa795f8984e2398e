"""The `Reflector` interface: trajectories in, one `Diagnosis` per turn out.

A reflector answers each trajectory with a `ReflectionResult`: the trajectory with its
``diagnoses`` filled, or the reason it could not be diagnosed. A trajectory is never dropped
and never given diagnoses that were not produced: it is either diagnosed in full or failed.
Errors that make every further call pointless (bad key, unreachable server) are raised.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any

from hero_agents.trajectory import Diagnosis, Trajectory


@dataclass
class ReflectionUsage:
    """What reflecting cost: model calls, HTTP requests and tokens (zero for baselines)."""

    calls: int = 0
    """Chat completions received (each one is billed)."""
    requests: int = 0
    """HTTP requests sent, counting the client's retries on 429, 5xx and timeouts."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    format_retries: int = 0
    """Re-asks after a reply that was not usable (bad JSON, wrong turns, refusal...)."""
    turn_fallbacks: int = 0
    """Batched calls given up for one call per turn."""
    windows: int = 0
    """Context windows a trajectory was split into (1 when it fit in one call)."""
    truncated_hints: int = 0

    def __iadd__(self, other: ReflectionUsage) -> ReflectionUsage:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))
        return self

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ReflectionResult:
    """One trajectory's outcome: diagnosed (``trajectory.diagnoses`` set) or failed (``error``)."""

    trajectory: Trajectory
    error: str | None = None
    usage: ReflectionUsage = field(default_factory=ReflectionUsage)
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def diagnoses(self) -> list[Diagnosis]:
        return list(self.trajectory.diagnoses or []) if self.ok else []

    @classmethod
    def diagnosed(
        cls,
        trajectory: Trajectory,
        diagnoses: Sequence[Diagnosis],
        *,
        usage: ReflectionUsage | None = None,
        cached: bool = False,
    ) -> ReflectionResult:
        """The trajectory with `diagnoses` attached (validated to cover every turn)."""
        filled = Trajectory.model_validate(
            {**trajectory.model_dump(), "diagnoses": [d.model_dump() for d in diagnoses]}
        )
        return cls(trajectory=filled, usage=usage or ReflectionUsage(), cached=cached)

    @classmethod
    def failed(
        cls, trajectory: Trajectory, error: str, *, usage: ReflectionUsage | None = None
    ) -> ReflectionResult:
        return cls(trajectory=trajectory, error=error, usage=usage or ReflectionUsage())


@dataclass
class ReflectionSummary:
    """Totals over many results: what share of turns was judged unnecessary or invalid,
    which trajectories failed, and what it cost."""

    trajectories: int = 0
    """Trajectories reflected on in this call (`skipped` ones not included)."""
    diagnosed: int = 0
    cached: int = 0
    skipped: int = 0
    """Trajectories found already done (or already failed) by a resumed run."""
    turns: int = 0
    unnecessary: int = 0
    invalid: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    usage: ReflectionUsage = field(default_factory=ReflectionUsage)

    @classmethod
    def of(cls, diagnosed: Iterable[Trajectory], failures: dict[str, str]) -> ReflectionSummary:
        """The summary of trajectories already diagnosed (e.g. read back from a file) and of
        those that failed, by id (the usage is unknown: zero)."""
        summary = cls()
        for trajectory in diagnosed:
            summary.add(ReflectionResult(trajectory))
        summary.trajectories += len(failures)
        summary.failures.update(failures)
        return summary

    def add(self, result: ReflectionResult) -> None:
        self.trajectories += 1
        self.usage += result.usage
        if not result.ok:
            self.failures[result.trajectory.id] = result.error or "unknown error"
            return
        self.diagnosed += 1
        self.cached += int(result.cached)
        for diagnosis in result.diagnoses:
            self.turns += 1
            self.unnecessary += diagnosis.necessity == "unnecessary"
            self.invalid += diagnosis.validity == "invalid"

    @property
    def unnecessary_share(self) -> float:
        return self.unnecessary / self.turns if self.turns else 0.0

    @property
    def invalid_share(self) -> float:
        return self.invalid / self.turns if self.turns else 0.0

    def figures(self, reflector: str | None) -> dict[str, Any]:
        """The summary as a loop iteration records it (JSON-ready; at most 20 failures)."""
        return {
            "reflector": reflector,
            "diagnosed": self.diagnosed,
            "failed": len(self.failures),
            "turns": self.turns,
            "unnecessary_share": self.unnecessary_share if self.turns else None,
            "invalid_share": self.invalid_share if self.turns else None,
            "calls": self.usage.calls,
            "cached": self.cached,
            "failures": dict(list(self.failures.items())[:20]),
        }

    def cost_usd(self, prompt_per_million: float, completion_per_million: float) -> float:
        """Cost at the given prices in USD per million prompt and completion tokens."""
        return (
            self.usage.prompt_tokens * prompt_per_million
            + self.usage.completion_tokens * completion_per_million
        ) / 1e6


class Reflector(ABC):
    """Writes one `Diagnosis` per turn of each trajectory, in hindsight.

    Subclasses implement `reflect_one`; `astream`, `areflect` and `reflect` run it over many
    trajectories with at most `max_concurrency` in flight. Use as a (async) context manager or
    call `close` when the reflector holds resources (a server, a model).
    """

    name: str
    """Written into every `Diagnosis.reflector`; never holds a secret."""
    max_concurrency: int = 1

    @abstractmethod
    async def reflect_one(self, trajectory: Trajectory) -> ReflectionResult:
        """Diagnose one trajectory, or return a failed result that says why."""

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Resources held for one batch (e.g. an HTTP client bound to the running loop)."""
        yield

    async def astream(self, trajectories: Iterable[Trajectory]) -> AsyncIterator[ReflectionResult]:
        """Results in completion order, as soon as each is ready."""
        async with self.session():
            source = iter(trajectories)
            pending: set[asyncio.Task[ReflectionResult]] = set()

            def refill() -> None:
                while len(pending) < max(1, self.max_concurrency):
                    trajectory = next(source, None)
                    if trajectory is None:
                        return
                    pending.add(asyncio.ensure_future(self.reflect_one(trajectory)))

            refill()
            try:
                while pending:
                    done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    pending.difference_update(done)
                    errors = [task.exception() for task in done]  # retrieves every error
                    fatal = next((error for error in errors if error is not None), None)
                    if fatal is not None:
                        raise fatal
                    for task in done:
                        yield task.result()
                    refill()
            finally:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)

    async def areflect(self, trajectories: Iterable[Trajectory]) -> list[ReflectionResult]:
        """Results in input order; a raised (fatal) error cancels the rest."""
        batch = list(trajectories)
        async with self.session():
            semaphore = asyncio.Semaphore(max(1, self.max_concurrency))

            async def bounded(trajectory: Trajectory) -> ReflectionResult:
                async with semaphore:
                    return await self.reflect_one(trajectory)

            try:
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(bounded(trajectory)) for trajectory in batch]
            except ExceptionGroup as errors:
                raise errors.exceptions[0] from None
        return [task.result() for task in tasks]

    def reflect(self, trajectories: Iterable[Trajectory]) -> list[ReflectionResult]:
        """Synchronous `areflect`; works from inside a running event loop too (own thread)."""
        batch = list(trajectories)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.areflect(batch))
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self.areflect(batch)).result()

    def close(self) -> None:
        """Release held resources; the default holds none."""
        return None

    def __enter__(self) -> Reflector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
