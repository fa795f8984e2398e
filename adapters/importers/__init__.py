"""Importers of production traces: OpenAI chat JSONL, LangSmith run exports and OpenTelemetry
GenAI spans become `Trajectory` records (source ``"production"``) that `hero reflect` and
`hero distill` take as they take rollouts, with no environment.

``hero import FORMAT SRC --out traces.jsonl`` is the command; `import_traces` is the same in
Python.
"""

from hero_agents.adapters.importers.outcome import OutcomeLabels
from hero_agents.adapters.importers.pipeline import ImportSettings, import_traces
from hero_agents.adapters.importers.registry import FORMATS, get_format
from hero_agents.adapters.importers.report import ImportReport, Problem
from hero_agents.adapters.importers.sources import expand_sources

__all__ = [
    "FORMATS",
    "ImportReport",
    "ImportSettings",
    "OutcomeLabels",
    "Problem",
    "expand_sources",
    "get_format",
    "import_traces",
]
