"""The sample logs are in each format's real schema: the SDKs that define them accept them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from google.protobuf.json_format import ParseDict
from langchain_core.load import load
from langchain_core.messages import BaseMessage
from langsmith.schemas import Run
from openai.types.chat import ChatCompletion
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sample_logs import write_samples


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_langsmith_samples_are_runs_with_langchain_messages(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    traces = write_samples("langsmith", path, 6, seed=1)
    runs = [Run(**record) for record in records(path)]
    assert len({run.trace_id for run in runs}) == traces
    llm = [run for run in runs if run.run_type == "llm"]
    for run in llm:
        context = load(run.inputs["messages"][0], allowed_objects="messages")
        action = load(run.outputs["generations"][0][0]["message"], allowed_objects="messages")
        assert all(isinstance(m, BaseMessage) for m in [*context, action])
        assert run.extra["metadata"]["langgraph_node"] == "agent"


def test_otel_samples_are_otlp_export_requests(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    write_samples("otel", path, 4, seed=1)
    for record in records(path):
        for resource in record["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:  # OTLP/JSON ids are hex; protobuf JSON wants base64
                    for key in ("traceId", "spanId", "parentSpanId"):
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
        request = ParseDict(record, ExportTraceServiceRequest())
        assert request.resource_spans[0].scope_spans[0].spans


def test_openai_request_samples_hold_chat_completions(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    write_samples("openai", path, 4, seed=1, style="requests")
    for record in records(path):
        completion = ChatCompletion.model_validate(record["response"])
        assert completion.choices[0].message.role == "assistant"
