"""A reflector that only ever sees redacted trajectories.

`RedactingReflector` wraps any `Reflector`: each trajectory is redacted (`hero_agents.redaction`)
before the inner reflector renders, caches or sends it, and the diagnoses come back attached to
the *original* trajectory, which never left the machine. The diagnoses are kept exactly as the
reflector wrote them: a hint may name ``<EMAIL_1>``, and originals are never substituted back,
so neither the diagnosis files nor the reflection cache hold a redacted value. A diagnosed
trajectory in which something was redacted records the counts per kind in
``metadata["redacted"]``, so a reader knows that placeholders in its hints stand for values of
its turns.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from hero_agents.redaction import RedactionReport, Redactor
from hero_agents.reflection.base import ReflectionResult, Reflector
from hero_agents.trajectory import Trajectory


class RedactingReflector(Reflector):
    """Redacts each trajectory before `inner` sees it; `report` counts what was redacted."""

    def __init__(self, inner: Reflector, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor
        self.name = inner.name
        self.max_concurrency = inner.max_concurrency
        self.report = RedactionReport()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        async with self.inner.session():
            yield

    async def reflect_one(self, trajectory: Trajectory) -> ReflectionResult:
        redacted = self.redactor.redact(trajectory)
        self.report.add(redacted.counts)
        result = await self.inner.reflect_one(redacted.trajectory)
        if not result.ok:
            return ReflectionResult.failed(trajectory, result.error or "", usage=result.usage)
        original = trajectory
        if redacted.counts:
            metadata = {**trajectory.metadata, "redacted": redacted.counts}
            original = trajectory.model_copy(update={"metadata": metadata})
        return ReflectionResult.diagnosed(
            original, result.diagnoses, usage=result.usage, cached=result.cached
        )

    def close(self) -> None:
        self.inner.close()
