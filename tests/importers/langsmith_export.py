"""LangSmith exports made by the real thing: LangChain's own `LangChainTracer` records the runs
of a real LangGraph agent, and each run is written as `langsmith.schemas.Run` JSON, the shape
``Client.list_runs`` returns. Only the network is left out: the tracer's two send methods
keep the run instead of posting it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tracers.langchain import LangChainTracer
from langchain_core.utils.function_calling import convert_to_openai_tool
from langsmith import Client
from langsmith._internal._serde import dumps_json
from langsmith.schemas import Run


class ToolCallingFakeModel(GenericFakeChatModel):
    """LangChain's scripted chat model, with `bind_tools` as real chat models have it (the
    tools then appear in the run's invocation params, as with ChatOpenAI)."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any):  # type: ignore[no-untyped-def, override]
        return self.bind(tools=[convert_to_openai_tool(tool) for tool in tools], **kwargs)


def scripted_model(replies: Iterable[AIMessage]) -> ToolCallingFakeModel:
    return ToolCallingFakeModel(messages=iter(list(replies)))


def capturing_tracer() -> tuple[LangChainTracer, dict[str, Any]]:
    """A `LangChainTracer` whose runs land in the returned dict (run id → run) when it would
    post or patch them. Copies of the tracer (LangChain makes one per child run) share it."""
    runs: dict[str, Any] = {}

    class Capture(LangChainTracer):
        def _persist_run_single(self, run: Any) -> None:
            runs[str(run.id)] = run

        def _update_run_single(self, run: Any) -> None:
            runs[str(run.id)] = run

    client = Client(api_key="not-sent", api_url="http://127.0.0.1:9", auto_batch_tracing=False)
    return Capture(client=client, project_name="support"), runs


def export_runs(runs: dict[str, Any], path: Path) -> int:
    """Append `runs` to `path` as JSON lines of `langsmith.schemas.Run` (inputs and outputs in
    the SDK's own JSON encoding); returns the count."""
    fields = set(Run.model_fields)
    lines = []
    for run in runs.values():
        data = json.loads(dumps_json(run.model_dump(exclude={"child_runs"})))
        record = Run(**{key: value for key, value in data.items() if key in fields})
        lines.append(record.model_dump_json())
    with path.open("a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line + "\n")
    return len(lines)


def set_feedback(path: Path, trace_id: str, stats: dict[str, Any]) -> None:
    """Give the root run of `trace_id` feedback stats, as LangSmith reports them per run."""
    lines = path.read_text().splitlines()
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            record = json.loads(line)
            if record["id"] == trace_id:
                record["feedback_stats"] = stats
            handle.write(json.dumps(record) + "\n")
