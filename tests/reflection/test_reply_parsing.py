"""Reading replies into diagnoses: forgiving small slips, refusing anything that needs a guess."""

from __future__ import annotations

import json
import re

import pytest

from hero_agents.reflection.parsing import ReplyFormatError, parse_diagnoses


def entry(i: int, **fields) -> dict:
    return {
        "turn_index": i,
        "necessity": "necessary",
        "validity": "valid",
        "cause": None,
        "hint": f"hint {i}",
        **fields,
    }


def parse(text: str, targets=(0, 1), **kwargs):
    return parse_diagnoses(text, list(targets), reflector="r", **kwargs)


def test_strict_reply() -> None:
    reply = json.dumps({"diagnoses": [entry(0), entry(1, validity="invalid", cause="bad id")]})
    parsed = parse(reply)
    assert [d.turn_index for d in parsed.diagnoses] == [0, 1]
    assert parsed.diagnoses[1].validity == "invalid" and parsed.diagnoses[1].cause == "bad id"
    assert {d.reflector for d in parsed.diagnoses} == {"r"}


@pytest.mark.parametrize(
    "wrap",
    [
        lambda body: f"```json\n{body}\n```",
        lambda body: f"Here is my review:\n{body}\nHope this helps.",
        lambda body: json.dumps(json.loads(body)["diagnoses"]),  # a bare array
    ],
)
def test_tolerated_wrappings(wrap) -> None:
    body = json.dumps({"diagnoses": [entry(1), entry(0)]})  # any order
    assert [d.turn_index for d in parse(wrap(body)).diagnoses] == [0, 1]


def test_tolerated_field_variants() -> None:
    reply = json.dumps(
        [
            {
                "turn": "0",
                "necessity": "Necessary",
                "validity": "NOT VALID",
                "hint": "h",
                "cause": "N/A",
            },
            {"index": 1, "necessity": "not_necessary", "validity": "Valid", "hint": "h"},
        ]
    )
    first, second = parse(reply).diagnoses
    assert (first.necessity, first.validity, first.cause) == ("necessary", "invalid", None)
    assert (second.necessity, second.validity) == ("unnecessary", "valid")


def test_single_object_for_a_single_turn() -> None:
    assert parse(json.dumps(entry(3)), targets=[3]).diagnoses[0].turn_index == 3


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("", "empty"),
        ("The agent did well.", "not valid JSON"),
        ('{"diagnoses": [{"turn_index": 0, "hint": "unfinished', "cut off"),
        (json.dumps({"diagnoses": [entry(0)]}), "expected 2 diagnoses (turns [0, 1]), got 1"),
        (json.dumps({"diagnoses": [entry(0), entry(0)]}), "turn 0 is diagnosed twice"),
        (json.dumps({"diagnoses": [entry(0), entry(5)]}), "turn 5 was not asked for"),
        (json.dumps({"diagnoses": [entry(0), {"hint": "x"}]}), "no integer 'turn_index'"),
        (json.dumps({"diagnoses": [entry(0), entry(1, validity="maybe")]}), "'validity' must be"),
        (json.dumps({"diagnoses": [entry(0), entry(1, hint="  ")]}), "'hint' must be"),
        (json.dumps({"diagnoses": [entry(0), entry(1, cause=3)]}), "'cause' must be"),
        (json.dumps({"result": "ok"}), 'expected a JSON object {"diagnoses"'),
        (json.dumps({"diagnoses": [entry(0), "turn 1 was fine"]}), "entry 1 is not a JSON object"),
    ],
)
def test_unusable_replies_say_why(reply: str, message: str) -> None:
    with pytest.raises(ReplyFormatError, match=re.escape(message)):
        parse(reply)


def test_long_hints_and_causes_are_cut_and_counted() -> None:
    long_text = " ".join(f"w{i}" for i in range(100))
    reply = json.dumps({"diagnoses": [entry(0, hint=long_text, cause=long_text), entry(1)]})
    parsed = parse(reply, max_hint_words=10)
    assert parsed.truncated_hints == 1
    assert parsed.diagnoses[0].hint.split()[:-1] == [f"w{i}" for i in range(15)]
    assert len(parsed.diagnoses[0].cause.split()) == 11  # 10 words and the ellipsis
    assert parsed.diagnoses[1].hint == "hint 1"
