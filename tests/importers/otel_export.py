"""OpenTelemetry exports made by the real SDK: spans recorded by a `TracerProvider`, written
as the SDK's span JSON (``ReadableSpan.to_json``) or as OTLP/JSON (the SDK's own OTLP protobuf
encoding, as JSON with hex ids as the OTLP/JSON spec asks)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, Tracer


class Recorder:
    """A tracer whose finished spans are kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer: Tracer = provider.get_tracer("test.genai")

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


def write_sdk_json(spans: Sequence[ReadableSpan], path: Path) -> None:
    with path.open("a", encoding="utf-8") as handle:
        for span in spans:
            handle.write(span.to_json(indent=None) + "\n")


def _hex_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: base64.b64decode(item).hex()
            if key in ("traceId", "spanId", "parentSpanId") and item
            else _hex_ids(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(item) for item in value]
    return value


def write_otlp_json(spans: Sequence[ReadableSpan], path: Path) -> None:
    request = MessageToDict(encode_spans(spans))
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(_hex_ids(request)) + "\n")


def fail(span: Any, message: str) -> None:
    span.set_status(Status(StatusCode.ERROR, message))
