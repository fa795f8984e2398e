"""Parsing Hermes-style tool calls out of generated text, and preparing messages for templates."""

from __future__ import annotations

import json

from hero_agents.adapters.policy.tool_calls import parse_tool_calls
from hero_agents.messages import template_messages


def block(payload: str) -> str:
    return f"<tool_call>\n{payload}\n</tool_call>"


def test_one_call() -> None:
    parsed = parse_tool_calls(block('{"name": "get_weather", "arguments": {"city": "Paris"}}'))
    assert parsed.content == ""
    assert parsed.invalid_tool_calls == []
    [call] = parsed.tool_calls
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
    assert call["id"].startswith("call_")


def test_several_calls_get_unique_ids() -> None:
    text = "\n".join(
        block(json.dumps({"name": "add", "arguments": {"a": i, "b": 1}})) for i in range(3)
    )
    parsed = parse_tool_calls(text)
    assert [c["args"]["a"] for c in parsed.tool_calls] == [0, 1, 2]
    assert len({c["id"] for c in parsed.tool_calls}) == 3
    assert parsed.content == ""


def test_text_around_calls_stays_content() -> None:
    text = "Let me check.\n" + block('{"name": "f", "arguments": {}}') + "\nOne moment."
    parsed = parse_tool_calls(text)
    assert parsed.content == "Let me check.\n\nOne moment."
    assert [c["name"] for c in parsed.tool_calls] == ["f"]


def test_plain_text_has_no_calls() -> None:
    parsed = parse_tool_calls("  Hello there!  ")
    assert (parsed.content, parsed.tool_calls, parsed.invalid_tool_calls) == (
        "Hello there!",
        [],
        [],
    )


def test_malformed_json_is_kept_as_text_and_reported() -> None:
    bad = block('{"name": "f", "arguments": {"a": 1')
    parsed = parse_tool_calls("Before " + bad + " " + block('{"name": "g", "arguments": {}}'))
    assert [c["name"] for c in parsed.tool_calls] == ["g"]
    [invalid] = parsed.invalid_tool_calls
    assert "not valid JSON" in invalid["error"]
    assert invalid["args"] == '{"name": "f", "arguments": {"a": 1'
    assert parsed.content == "Before " + bad


def test_missing_name_or_arguments_is_invalid() -> None:
    no_name = parse_tool_calls(block('{"arguments": {"a": 1}}'))
    assert no_name.tool_calls == [] and "no 'name'" in no_name.invalid_tool_calls[0]["error"]
    no_args = parse_tool_calls(block('{"name": "f"}'))
    assert no_args.tool_calls == []
    assert no_args.invalid_tool_calls[0]["name"] == "f"
    assert "'arguments'" in no_args.invalid_tool_calls[0]["error"]
    not_object = parse_tool_calls(block("[1, 2]"))
    assert "JSON object" in not_object.invalid_tool_calls[0]["error"]


def test_unterminated_tag_is_invalid() -> None:
    text = 'Sure <tool_call>\n{"name": "f", "arguments": {"a": 1}}'
    parsed = parse_tool_calls(text)
    assert parsed.tool_calls == []
    assert "closing </tool_call>" in parsed.invalid_tool_calls[0]["error"]
    assert parsed.content == text
    truncated = parse_tool_calls('<tool_call>\n{"name": "f", "argu')
    assert "unterminated" in truncated.invalid_tool_calls[0]["error"]


def test_template_messages_decodes_argument_strings() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "type": "function",
                    "id": "c1",
                    "function": {"name": "f", "arguments": '{"a": 1}'},
                },
                {"type": "function", "id": "c2", "function": {"name": "g", "arguments": "{oops"}},
            ],
        },
    ]
    prepared = template_messages(messages)
    calls = prepared[1]["tool_calls"]
    assert calls[0]["function"]["arguments"] == {"a": 1}
    assert calls[1]["function"]["arguments"] == "{oops"
    assert calls[0]["id"] == "c1"
    # the input is not modified
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'
