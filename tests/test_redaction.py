"""Redaction: each default pattern, what it must leave alone, consistent placeholders, user
patterns, and which reflectors redact by default."""

from __future__ import annotations

import json

import pytest

from hero_agents.adapters.reflectors import is_hosted
from hero_agents.errors import ConfigError
from hero_agents.redaction import RedactionReport, RedactionRule, Redactor
from hero_agents.reflection import parse_reflector_spec
from hero_agents.trajectory import Trajectory, Turn

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        (
            "EMAIL",
            "write to jane.doe+orders@mail.example.co.uk today",
            "jane.doe+orders@mail.example.co.uk",
        ),
        ("PHONE", "call +1 (555) 123-4567 now", "+1 (555) 123-4567"),
        ("PHONE", "or +44 20 7946 0958.", "+44 20 7946 0958"),
        ("PHONE", "my cell is 555-123-4567", "555-123-4567"),
        ("PHONE", "office (555) 123 4567", "(555) 123 4567"),
        ("PHONE", "London 020 7946 0958", "020 7946 0958"),
        ("CARD", "card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111"),
        ("CARD", "amex 3782-822463-10005", "3782-822463-10005"),
        ("CARD", "card 5555555555554444", "5555555555554444"),
        ("API_KEY", "OPENAI_API_KEY=sk-proj-" + "a1B2" * 8, "sk-proj-" + "a1B2" * 8),
        ("API_KEY", "anthropic sk-ant-api03-" + "x9" * 20, "sk-ant-api03-" + "x9" * 20),
        ("API_KEY", "token ghp_" + "A1b2C3d4E5" * 4, "ghp_" + "A1b2C3d4E5" * 4),
        ("API_KEY", "aws AKIAIOSFODNN7EXAMPLE key", "AKIAIOSFODNN7EXAMPLE"),
        ("API_KEY", "slack xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
        ("API_KEY", "google AIza" + "Sy" + "A" * 33, "AIza" + "Sy" + "A" * 33),
        (
            "API_KEY",
            "stripe sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
            "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        ),
        ("API_KEY", "hub hf_" + "abcdefghij" * 3 + "kl", "hf_" + "abcdefghij" * 3 + "kl"),
        ("TOKEN", f"session {JWT}", JWT),
        ("TOKEN", "Authorization: Bearer abcDEF0123456789ghiJKL", "abcDEF0123456789ghiJKL"),
        ("SECRET", 'config {"password": "hunter2-hunter2"}', "hunter2-hunter2"),
        ("SECRET", "api_key=zq8Xw3PmTT", "zq8Xw3PmTT"),
        ("SECRET", "postgres://admin:s3cr3t-pw@db.internal:5432/app", "s3cr3t-pw"),
        (
            "SECRET",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
        ),
    ],
)
def test_each_default_pattern(kind: str, text: str, value: str) -> None:
    session = Redactor().session()
    redacted = session.text(text)
    assert value not in redacted
    assert f"<{kind}_1>" in redacted
    assert redacted == text.replace(value, f"<{kind}_1>")
    assert session.counts == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "Order #W2378156 was placed on 2024-05-01 at 14:03:22.",
        "It costs $1234.56 (or 1,234.56 EUR), version 1.2.3, zip 94105.",
        "Timestamp 1796283748597 and id 123456789012.",
        "Not a card: 4111 1111 1111 1112 (bad checksum).",
        "Counts 12 34 56, room 402, +5 points.",
        "The token: expired yesterday.",
        "user_id: 42, tool get_order_details, call id call_8f2a9",
    ],
)
def test_ordinary_values_are_left_alone(text: str) -> None:
    session = Redactor().session()
    assert session.text(text) == text
    assert session.counts == {}


def test_placeholders_are_consistent_within_a_trajectory() -> None:
    session = Redactor().session()
    first = session.text("From Jane@Example.com and bob@example.com, phone 555-123-4567.")
    second = session.text("Again jane@example.com; phone 555.123.4567; card 4111111111111111.")
    assert first == "From <EMAIL_1> and <EMAIL_2>, phone <PHONE_1>."
    assert second == "Again <EMAIL_1>; phone <PHONE_1>; card <CARD_1>."
    assert session.counts == {"EMAIL": 2, "PHONE": 1, "CARD": 1}
    assert Redactor().session().text("bob@example.com") == "<EMAIL_1>"  # a new trajectory


def _trajectory() -> Trajectory:
    system = {"role": "system", "content": "Support agent. Escalate to ops@shop.example."}
    user = {
        "role": "user",
        "content": [{"type": "text", "text": "I'm jane@example.com, call me at +1 555 123 4567"}],
    }
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "find_user", "arguments": json.dumps({"email": "jane@example.com"})},
    }
    action = {"role": "assistant", "content": "", "tool_calls": [call]}
    result = {
        "role": "tool",
        "tool_call_id": "call_1",
        "name": "find_user",
        "content": json.dumps(
            {"user": "u_17", "email": "JANE@example.com", "card": "4111111111111111"}
        ),
    }
    answer = {"role": "assistant", "content": "Found you, jane@example.com. Card ending 1111."}
    tools = [{"type": "function", "function": {"name": "find_user", "parameters": {}}}]
    return Trajectory(
        id="t1",
        task_id="ticket from jane@example.com",
        turns=[
            Turn(
                index=0, messages=[system, user], tools=tools, action=action, observation=[result]
            ),
            Turn(index=1, messages=[system, user, action, result], tools=tools, action=answer),
        ],
        source="production",
    )


def test_a_trajectory_is_redacted_everywhere_a_reflector_looks() -> None:
    original = _trajectory()
    before = original.model_dump_json()
    redacted = Redactor().redact(original)
    text = redacted.trajectory.model_dump_json()

    for secret in ("jane@example.com", "JANE@example.com", "555 123 4567", "4111111111111111"):
        assert secret not in text
    assert "ops@shop.example" not in text
    first, second = redacted.trajectory.turns
    assert first.messages[0]["content"] == "Support agent. Escalate to <EMAIL_1>."
    assert first.messages[1]["content"][0]["text"] == "I'm <EMAIL_2>, call me at <PHONE_1>"
    assert json.loads(first.action["tool_calls"][0]["function"]["arguments"]) == {
        "email": "<EMAIL_2>"
    }
    assert json.loads(first.observation[0]["content"]) == {
        "user": "u_17",
        "email": "<EMAIL_2>",
        "card": "<CARD_1>",
    }
    assert second.messages[2] == first.action  # the same placeholders in every context
    assert second.action["content"] == "Found you, <EMAIL_2>. Card ending 1111."
    assert redacted.trajectory.task_id == "ticket from <EMAIL_2>"
    # structure is kept: roles, tool names and ids, schemas
    assert first.action["tool_calls"][0]["id"] == "call_1"
    assert first.observation[0]["name"] == "find_user"
    assert first.tools == original.turns[0].tools
    assert redacted.counts == {"EMAIL": 2, "PHONE": 1, "CARD": 1}
    assert original.model_dump_json() == before  # the original is untouched


def test_user_patterns_apply_first_and_may_mark_a_value_group() -> None:
    rule = RedactionRule.parse(r"CUSTOMER=customer (?P<value>C-\d{6})")
    redactor = Redactor(extra=[rule])
    session = redactor.session()
    assert session.text("customer C-004211 wrote; customer C-004211 again") == (
        "customer <CUSTOMER_1> wrote; customer <CUSTOMER_1> again"
    )
    assert redactor.rules[0] is rule
    whole = Redactor(extra=[RedactionRule.parse(r"ORDER=#W\d{7}")]).session()
    assert whole.text("order #W2378156 by a@b.co") == "order <ORDER_1> by <EMAIL_1>"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ORDER", "expected KIND=REGEX"),
        ("order=W\\d+", "upper case"),
        ("ORDER=W(\\d+", "not a valid regex"),
        ("ORDER=\\d*", "empty string"),
    ],
)
def test_bad_user_patterns_say_why(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        RedactionRule.parse(text)


def test_report_counts_values_per_kind_and_trajectories() -> None:
    report = RedactionReport()
    redactor = Redactor()
    for trajectory in (_trajectory(), _trajectory()):
        report.add(redactor.redact(trajectory).counts)
    report.add({})
    assert report.trajectories == 3 and report.redacted_trajectories == 2
    assert report.values == {"EMAIL": 4, "PHONE": 2, "CARD": 2}


@pytest.mark.parametrize(
    ("spec", "hosted"),
    [
        ("openai:gpt-4o-mini", True),
        ("openai-compatible:https://my-vllm.internal:8000/v1#Qwen", True),
        ("openai-compatible:http://10.0.0.7:8000/v1#Qwen", True),
        ("openai-compatible:http://127.0.0.1:8000/v1#Qwen", False),
        ("openai-compatible:http://localhost:8000/v1#Qwen", False),
        ("openai-compatible:http://[::1]:8000/v1#Qwen", False),
        ("self", False),
        ("env-feedback", False),
        ("demo", False),
    ],
)
def test_hosted_reflectors_are_the_ones_that_leave_the_machine(spec: str, hosted: bool) -> None:
    assert is_hosted(parse_reflector_spec(spec)) is hosted
