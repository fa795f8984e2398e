"""OpenAI chat-completions JSONL: fine-tuning conversations, logged requests grouped by thread
(with a summarized history), outcome labels, and broken lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from message_helpers import tool_call_names

from hero_agents.adapters.importers import OutcomeLabels

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
SYSTEM = {"role": "system", "content": "You are a travel assistant."}
USER = {
    "role": "user",
    "content": [
        {"type": "text", "text": "Weather in Paris"},
        {"type": "text", "text": "and Rome?"},
    ],
}


def weather_call(call_id: str, city: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
    }


CALLS = {
    "role": "assistant",
    "content": None,
    "tool_calls": [weather_call("c1", "Paris"), weather_call("c2", "Rome")],
}
RESULTS = [
    {"role": "tool", "tool_call_id": "c1", "content": "18C, sunny"},
    {"role": "tool", "tool_call_id": "c2", "content": "Error: city not found"},
]
ANSWER = {"role": "assistant", "content": "Paris is sunny at 18C; Rome I could not look up."}


def write_lines(path: Path, *records: Any) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_a_fine_tuning_conversation_is_one_trajectory(run_import, tmp_path: Path) -> None:
    record = {
        "messages": [SYSTEM, USER, CALLS, *RESULTS, ANSWER, {"role": "user", "content": "Thanks"}],
        "tools": TOOLS,
        "parallel_tool_calls": True,
        "metadata": {"feedback": "thumbs_up"},
    }
    path = write_lines(tmp_path / "chat.jsonl", record)
    labels = OutcomeLabels.parse(["metadata.feedback"], ["thumbs_up=1", "thumbs_down=0"])

    trajectories, report = run_import("openai", path, outcome=labels)
    [trajectory] = trajectories.values()
    assert trajectory.id.startswith("openai-") and trajectory.source == "production"
    assert trajectory.reward == 1.0 and report.rewarded == 1
    calls, answer = trajectory.turns
    assert calls.messages == [SYSTEM, {"role": "user", "content": "Weather in Paris\nand Rome?"}]
    assert calls.tools == TOOLS
    assert tool_call_names(calls.action) == ["get_weather", "get_weather"]
    assert calls.observation == RESULTS
    assert answer.messages[-2:] == RESULTS
    assert answer.action == ANSWER
    assert answer.observation == [{"role": "user", "content": "Thanks"}]
    assert trajectory.tool_errors == 0  # OpenAI logs carry no error status; the text says it

    again, _ = run_import("openai", path)
    assert set(again) == set(trajectories)  # ids are stable across imports


def test_logged_requests_of_a_thread_join_and_keep_a_summarized_context(
    run_import, tmp_path: Path
) -> None:
    def request(position: int, messages: list, action: dict, thread: str = "t-1") -> dict:
        return {
            "request": {"model": "gpt-4o", "messages": messages, "tools": TOOLS},
            "response": {
                "id": f"chatcmpl-{thread}-{position}",
                "created": 1_700_000_000 + position,
                "model": "gpt-4o-2024-08-06",
                "choices": [{"index": 0, "message": action, "finish_reason": "stop"}],
            },
            "metadata": {"thread_id": thread, "resolved": position == 2},
        }

    summary = {"role": "system", "content": "Summary: the user asked about Paris and Rome."}
    follow_up = {"role": "user", "content": "And tomorrow?"}
    lines = [
        request(2, [SYSTEM, summary, follow_up], {"role": "assistant", "content": "Rain."}),
        request(0, [SYSTEM, USER], CALLS),
        request(
            0,
            [SYSTEM, {"role": "user", "content": "hi"}],
            {"role": "assistant", "content": "Hello"},
            "t-2",
        ),
        request(1, [SYSTEM, USER, CALLS, *RESULTS], ANSWER),
    ]
    path = write_lines(tmp_path / "requests.jsonl", *lines)

    labels = OutcomeLabels(fields=("metadata.resolved",))
    trajectories, report = run_import("openai", path, outcome=labels)
    assert set(trajectories) == {"t-1", "t-2"} and report.problem_count == 0
    thread = trajectories["t-1"]
    assert [turn.action["content"] for turn in thread.turns] == [None, ANSWER["content"], "Rain."]
    first, second, third = thread.turns
    assert first.observation == RESULTS  # read from the next request's messages
    assert second.observation == []  # the next request sent a summary instead of the history
    assert third.messages == [SYSTEM, summary, follow_up]  # its own context, as sent
    assert thread.reward == 1.0  # the latest request's label
    assert thread.metadata["models"] == ["gpt-4o-2024-08-06"]
    assert thread.metadata["traces"] == ["chatcmpl-t-1-0", "chatcmpl-t-1-1", "chatcmpl-t-1-2"]
    assert trajectories["t-2"].reward == 0.0


def test_broken_lines_are_counted_with_their_line_number(run_import, tmp_path: Path) -> None:
    good = {
        "messages": [
            SYSTEM,
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello"},
        ]
    }
    path = write_lines(
        tmp_path / "chat.jsonl",
        good,
        '{"messages": [{"role": "user", "content": "torn',
        json.dumps([1, 2]),
        {"prompt": "completion-style line", "completion": "x"},
        {"messages": [{"role": "user", "content": "only a question"}]},
        {"messages": [{"role": "wizard", "content": "?"}, {"role": "assistant", "content": "!"}]},
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
            ],
            "functions": [{"name": "f"}],
        },
        {
            "messages": [{"role": "user", "content": "hi"}],
            "choices": [{"message": {"role": "user", "content": "?"}}],
        },
        "",
        good | {"metadata": {"feedback": "meh"}},
    )
    labels = OutcomeLabels(fields=("metadata.feedback",))
    trajectories, report = run_import("openai", path, outcome=labels)

    assert len(trajectories) == 2
    assert dict(report.problems) == {
        "invalid JSON": 1,
        "not an object": 1,
        "missing field": 1,
        "no model calls": 1,
        "bad message": 2,
        "legacy function calling": 1,
        "unmapped outcome label": 1,
    }
    where = {kind: [p.location for p in problems] for kind, problems in report.examples.items()}
    assert where["invalid JSON"] == [f"{path}:2"]
    assert where["not an object"] == [f"{path}:3"]
    assert where["missing field"] == [f"{path}:4"]
    assert where["no model calls"] == [f"{path}:5"]
    assert where["bad message"] == [f"{path}:6 message 0", f"{path}:8"]
    assert where["legacy function calling"] == [f"{path}:7"]
    assert where["unmapped outcome label"] == [f"{path}:10"]
    assert "--reward-label meh=NUMBER" in report.examples["unmapped outcome label"][0].message
