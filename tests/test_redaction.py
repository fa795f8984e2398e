"""Redaction: each default pattern, what it must leave alone, consistent placeholders, user
patterns, and which reflectors redact by default."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hero_agents.adapters.reflectors import is_hosted
from hero_agents.errors import ConfigError
from hero_agents.redaction import RedactionReport, RedactionRule, Redactor
from hero_agents.reflection import parse_reflector_spec
from hero_agents.trajectory import Trajectory, Turn

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
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
        ("SECRET", f'{{"SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET),
        ("SECRET", f"export AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET),
        ("SSN", "SSN 123-45-6789 on file", "123-45-6789"),
        ("SSN", "card holder 078 05 1120.", "078 05 1120"),
        ("SSN", "social security number: 078051120", "078051120"),
        ("IBAN", "pay to GB82WEST12345698765432 today", "GB82WEST12345698765432"),
        ("IBAN", "to BE68 5390 0754 7034 2024 invoice 7", "BE68 5390 0754 7034"),
        (
            "IBAN",
            "IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX",
            "DE89 3704 0044 0532 0130 00",
        ),
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
        # tau2 ids, dates, prices, quantities
        "user mia_garcia_4516, item 1008292230, payment credit_card_7815826, gift_card_2806222",
        "Reservation EHGLP3 on flight HAT001 on 2024-05-15 for 2 passengers: $2,353.00.",
        "Dates 2024-05-01T14:03:22Z, 05/01/2024, 01.05.2024; zip+4 94105-1234; -12.5%.",
        '{"order_id": "#W2378156", "item_ids": ["1008292230", "2509076505"], "total": 2353.0}',
        "qty 3, 1000 units, 3.14159, tracking 1Z999AA10123456784, ISBN 978-3-16-148410-0",
        # not a valid SSN (area 000, 666, 9xx; group 00) or IBAN (checksum)
        "100-00-0000, 900-12-3456, 666-12-3456, 000-12-3456",
        "GB82WEST12345698765433 and GB83 WEST 1234 5698 7654 32",
        # key-like names with ordinary values; hashes that are not near a key name
        '{"idempotency_key": "order-2024-05-01", "sort_key": "created_at_2024_05_01"}',
        '{"max_tokens": 512, "token_count": 12345678, "keyboard": "en-US-international"}',
        "commit a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
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


def test_every_string_in_object_form_tool_arguments_is_redacted() -> None:
    arguments = {
        "name": "jane@example.com",
        "id": "4111111111111111",
        "type": "sk-proj-" + "a1B2" * 8,
        "status": "123-45-6789",
        "role": "GB82WEST12345698765432",
        "contacts": [{"name": "+44 20 7946 0958", "tool_call_id": "bob@example.com"}],
        "bob@example.com": "a key that is data",
    }
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "refund", "arguments": arguments},
    }
    action = {
        "role": "assistant",
        "name": "agent",
        "content": [{"type": "text", "text": "Refunding jane@example.com"}],
        "tool_calls": [call],
        "invalid_tool_calls": [{"name": "refund", "arguments": {"id": "jane@example.com"}}],
    }
    result = {"role": "tool", "tool_call_id": "call_1", "name": "refund", "status": "error"}
    turn = Turn(index=0, messages=[{"role": "user", "content": "hi"}], action=action)
    trajectory = Trajectory(id="t", turns=[turn], source="production")

    redacted = Redactor().redact(trajectory).trajectory.turns[0].action
    assert redacted["tool_calls"][0]["function"]["arguments"] == {
        "name": "<EMAIL_1>",
        "id": "<CARD_1>",
        "type": "<API_KEY_1>",
        "status": "<SSN_1>",
        "role": "<IBAN_1>",
        "contacts": [{"name": "<PHONE_1>", "tool_call_id": "<EMAIL_2>"}],
        "<EMAIL_2>": "a key that is data",
    }
    assert redacted["invalid_tool_calls"] == [{"name": "refund", "arguments": {"id": "<EMAIL_1>"}}]
    # the message's, the tool call's and the content part's own fields are kept
    assert {k: v for k, v in redacted.items() if k in ("role", "name")} == {
        "role": "assistant",
        "name": "agent",
    }
    assert redacted["content"] == [{"type": "text", "text": "Refunding <EMAIL_1>"}]
    assert {k: redacted["tool_calls"][0][k] for k in ("id", "type")} == {
        "id": "call_1",
        "type": "function",
    }
    assert redacted["tool_calls"][0]["function"]["name"] == "refund"
    assert Redactor().session().message(result) == result


PLANTED = [
    # (README row, a text holding it, the value that must not reach the reflector)
    (
        "e-mail address",
        "reach me at jane.doe+orders@mail.example.co.uk",
        "jane.doe+orders@mail.example.co.uk",
    ),
    ("phone number, US", "call +1 (555) 123-4567", "+1 (555) 123-4567"),
    ("phone number, US", "cell: 555-123-4567.", "555-123-4567"),
    ("phone number, UK", "London office +44 20 7946 0958", "+44 20 7946 0958"),
    ("phone number, UK", "or 020 7946 0958", "020 7946 0958"),
    ("phone number, France", "Paris +33 1 23 45 67 89", "+33 1 23 45 67 89"),
    ("phone number, France", "tél. 01 23 45 67 89", "01 23 45 67 89"),
    ("phone number, Germany", "Berlin +49 30 12345678", "+49 30 12345678"),
    ("phone number, Germany", "Tel. 030 12345678", "030 12345678"),
    ("phone number, India", "mobile +91 98765 43210", "+91 98765 43210"),
    ("phone number, Japan", "Tokyo +81 3-1234-5678", "+81 3-1234-5678"),
    ("phone number, Brazil", "WhatsApp +55 11 91234-5678", "+55 11 91234-5678"),
    ("phone number, China", "Beijing +86 138 0013 8000", "+86 138 0013 8000"),
    ("card number, Visa", "card 4111 1111 1111 1111 on file", "4111 1111 1111 1111"),
    ("card number, Mastercard", "mc 5555555555554444", "5555555555554444"),
    ("card number, American Express", "amex 3782 822463 10005", "3782 822463 10005"),
    ("card number, Discover", "discover 6011-1111-1111-1117", "6011-1111-1111-1117"),
    ("card number, JCB", "jcb 3530 1113 3330 0000", "3530 1113 3330 0000"),
    ("card number, Diners Club", "diners 3056 9309 0259 04", "3056 9309 0259 04"),
    ("card number, UnionPay", "unionpay 6200 0000 0000 0005", "6200 0000 0000 0005"),
    ("US social security number", "SSN 123-45-6789", "123-45-6789"),
    ("US social security number", "ssn 078 05 1120", "078 05 1120"),
    ("US social security number", "SSN: 078051120", "078051120"),
    ("IBAN", "refund to GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("IBAN", "IBAN DE89 3704 0044 0532 0130 00.", "DE89 3704 0044 0532 0130 00"),
    ("IBAN", "FR14 2004 1010 0505 0001 3M02 606 (BNP)", "FR14 2004 1010 0505 0001 3M02 606"),
    ("AWS access key id", "aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("AWS secret access key", f"AKIAIOSFODNN7EXAMPLE,{AWS_SECRET}", AWS_SECRET),
    ("AWS secret access key", f"{AWS_SECRET}\n(the key for ASIAIOSFODNN7EXAMPLE)", AWS_SECRET),
    ("AWS secret access key", f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET),
    ("AWS secret access key", f'{{"SecretAccessKey": "{AWS_SECRET}"}}', AWS_SECRET),
    ("OpenAI key", "OPENAI_API_KEY=sk-proj-" + "a1B2" * 12, "sk-proj-" + "a1B2" * 12),
    ("OpenAI key", "key sk-" + "Zq7" * 16, "sk-" + "Zq7" * 16),
    ("Anthropic key", "sk-ant-api03-" + "x9Y_" * 20, "sk-ant-api03-" + "x9Y_" * 20),
    ("GitHub token", "ghp_" + "A1b2C3d4E5" * 4, "ghp_" + "A1b2C3d4E5" * 4),
    ("GitHub token", "github_pat_11" + "ABCdef123" * 9, "github_pat_11" + "ABCdef123" * 9),
    ("GitLab token", "glpat-" + "xYz12" * 4, "glpat-" + "xYz12" * 4),
    (
        "Slack token",
        "bot xoxb-1234567890-0987654321-AbCdEfGh",
        "xoxb-1234567890-0987654321-AbCdEfGh",
    ),
    (
        "Slack webhook",
        "post to https://hooks.slack.com/services/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",
        "https://hooks.slack.com/services/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",
    ),
    (
        "Google API key",
        "maps AIzaSy" + "B1c2D3e4F5" * 3 + "g6H",
        "AIzaSy" + "B1c2D3e4F5" * 3 + "g6H",
    ),
    ("Google OAuth client secret", "GOCSPX-" + "k9L8m7N6" * 4, "GOCSPX-" + "k9L8m7N6" * 4),
    ("Stripe key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("Stripe key", "rk_test_51HxYz" + "Q2w3E4r5" * 3, "rk_test_51HxYz" + "Q2w3E4r5" * 3),
    ("Hugging Face token", "hf_" + "abcdefghij" * 3 + "kl", "hf_" + "abcdefghij" * 3 + "kl"),
    ("npm token", "//registry.npmjs.org/:_authToken=npm_" + "aB3" * 12, "npm_" + "aB3" * 12),
    (
        "SendGrid key",
        "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",
        "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",
    ),
    ("JWT", f"cookie session={JWT};", JWT),
    ("bearer token", "Authorization: Bearer abcDEF0123456789ghiJKL", "abcDEF0123456789ghiJKL"),
    ("basic auth credentials", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    (
        "private key",
        "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----\n",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----",
    ),
    ("password in a URL", "postgres://admin:s3cret-pw@db:5432/app", "s3cret-pw"),
    ("password in a URL", "mongodb+srv://app:Hunter22x@cluster0.example.net", "Hunter22x"),
    ("labeled secret", "password=hunter2-hunter2", "hunter2-hunter2"),
    ("labeled secret", '{"api_key": "zq8Xw3PmTT4"}', "zq8Xw3PmTT4"),
    ("labeled secret", "client_secret: Ab3dEf6hIj9", "Ab3dEf6hIj9"),
    ("connection string", "Server=db;User Id=app;Password=Pa55word!x;", "Pa55word!x"),
    (
        "connection string",
        "DefaultEndpointsProtocol=https;AccountName=shop;AccountKey=Eby8vdM02xNOcqFlqUwJPLlm"
        "EtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;",
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    ),
    (
        "random-looking value under a key-like name",
        '{"signing_key": "9f86d081884c7d659a2feaa0c55ad015"}',
        "9f86d081884c7d659a2feaa0c55ad015",
    ),
    ("AWS secret access key alone", f"the value was {AWS_SECRET}", AWS_SECRET),
    ("SSN without separators or label", "customer 078051120", "078051120"),
    ("IPv4 address", "login from 203.0.113.7", "203.0.113.7"),
    ("IPv6 address", "login from 2001:db8::8a2e:370:7334", "2001:db8::8a2e:370:7334"),
    ("passport number", "passport X12345678", "X12345678"),
    ("other national ids", "NI number QQ 12 34 56 C", "QQ 12 34 56 C"),
    ("person's name", "customer Jane Doe", "Jane Doe"),
    ("postal address", "ship to 1 Main St, Springfield", "1 Main St, Springfield"),
    ("date of birth", "born 1990-04-12", "1990-04-12"),
    ("card expiry date and CVV", "exp 12/29 cvv 123", "12/29 cvv 123"),
    ("phone number without separators or `+`", "call 5551234567", "5551234567"),
]


def _readme_rows() -> dict[str, str]:
    """The README's redaction table: data -> what it becomes."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Production traces", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if line.startswith("| ") and len(cells) == 3 and cells[0] not in ("data", "---"):
            rows[cells[0]] = cells[2]
    return rows


def _planted_everywhere(text: str) -> list[str]:
    """`text` redacted where a trajectory holds it: a user message, a tool result, a tool call's
    arguments as a JSON string and as an object."""
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": text}}}
    string_call = {**call, "function": {"name": "f", "arguments": json.dumps({"a": text})}}
    turn = Turn(
        index=0,
        messages=[
            {"role": "user", "content": text},
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c", "content": text},
        ],
        action={"role": "assistant", "content": "", "tool_calls": [string_call]},
    )
    redacted = Redactor().redact(Trajectory(id="t", turns=[turn])).trajectory.turns[0]
    arguments = redacted.action["tool_calls"][0]["function"]["arguments"]
    return [
        redacted.messages[0]["content"],
        redacted.messages[1]["tool_calls"][0]["function"]["arguments"]["a"],
        redacted.messages[2]["content"],
        json.loads(arguments)["a"],
    ]


@pytest.mark.parametrize(("row", "text", "secret"), PLANTED)
def test_each_planted_kind_is_redacted_or_listed_as_not_covered(
    row: str, text: str, secret: str
) -> None:
    becomes = _readme_rows()[row]
    for redacted in _planted_everywhere(text):
        leaked = [part for part in re.findall(r"[A-Za-z0-9]{4,}", secret) if part in redacted]
        if becomes.startswith("not covered"):
            assert secret in redacted, f"{row}: redacted in {redacted!r}, not covered says README"
        else:
            kind = re.fullmatch(r"`<([A-Z_]+)_n>`", becomes)
            assert kind is not None, f"{row}: the README says {becomes!r}"
            assert not leaked, f"{row}: {leaked} left in {redacted!r}"
            assert re.search(f"<{kind.group(1)}_\\d+>", redacted)


def test_the_readme_table_lists_only_planted_kinds_and_at_least_30() -> None:
    rows = _readme_rows()
    assert set(rows) == {row for row, _, _ in PLANTED}
    assert len(rows) >= 30


def test_an_ordinary_tool_episode_is_left_alone() -> None:
    arguments = {
        "order_id": "#W2378156",
        "item_ids": ["1008292230", "2509076505"],
        "payment_method_id": "credit_card_7815826",
        "quantity": 2,
        "reason": "no longer needed",
    }
    result = {"order_id": "#W2378156", "status": "cancelled", "total": 353.98, "date": "2024-05-01"}
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "cancel", "arguments": arguments},
    }
    turn = Turn(
        index=0,
        messages=[
            {
                "role": "user",
                "content": "Cancel order #W2378156 (2 items, $353.98), user mia_garcia_4516.",
            },
            {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": json.dumps(result)},
        ],
        action={"role": "assistant", "content": "Done: refund of $353.98 in 5-7 days."},
    )
    trajectory = Trajectory(id="t", task_id="retail_task_17", turns=[turn])
    redacted = Redactor().redact(trajectory)
    assert redacted.trajectory == trajectory
    assert redacted.counts == {}


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
