"""The trace formats `hero import` reads, by name."""

from __future__ import annotations

from hero_agents.adapters.importers.formats import TraceFormat
from hero_agents.adapters.importers.langsmith import LangSmithRuns
from hero_agents.adapters.importers.openai_chat import OpenAIChat
from hero_agents.adapters.importers.otel import OpenTelemetrySpans
from hero_agents.errors import ConfigError

FORMATS: dict[str, TraceFormat] = {
    "openai": OpenAIChat(),
    "langsmith": LangSmithRuns(),
    "otel": OpenTelemetrySpans(),
}


def get_format(name: str) -> TraceFormat:
    """The format registered under `name`; `ConfigError` lists the valid names."""
    if name not in FORMATS:
        listed = "\n".join(f"  {n:<10} {f.description}" for n, f in FORMATS.items())
        raise ConfigError(f"unknown trace format {name!r}; formats:\n{listed}")
    return FORMATS[name]
