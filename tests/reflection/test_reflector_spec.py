"""Reflector specs: parsing, errors that list the valid forms, and building reflectors."""

from __future__ import annotations

import pytest

from hero_agents.adapters.reflectors import OpenAIReflector, is_hosted, load_reflector
from hero_agents.errors import ConfigError
from hero_agents.reflection import (
    DemoReflector,
    EnvFeedbackReflector,
    GroundedReflector,
    parse_reflector_spec,
)
from hero_agents.reflection.redacting import RedactingReflector


@pytest.mark.parametrize(
    ("text", "kind", "model", "base_url"),
    [
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini", None),
        (
            "openai-compatible:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-7B",
            "openai-compatible",
            "Qwen/Qwen2.5-7B",
            "http://127.0.0.1:8000/v1",
        ),
        ("self", "self", None, None),
        ("default", "default", None, None),
        (
            "vllm:http://127.0.0.1:8000/v1#policy-v2",
            "vllm",
            "policy-v2",
            "http://127.0.0.1:8000/v1",
        ),
        ("env-feedback", "env-feedback", None, None),
        ("demo", "demo", None, None),
        ("reference", "reference", None, None),
    ],
)
def test_valid_specs(text: str, kind: str, model: str | None, base_url: str | None) -> None:
    spec = parse_reflector_spec(text)
    named = (spec.model.name, spec.model.base_url) if spec.model else (None, None)
    assert (spec.kind, *named) == (kind, model, base_url)
    assert parse_reflector_spec(str(spec)) == spec


def test_a_model_folder_is_a_reflector_in_the_shared_grammar(tiny_model_dir) -> None:
    spec = parse_reflector_spec(str(tiny_model_dir))
    assert spec.kind == "folder" and spec.model.path == tiny_model_dir
    assert str(spec) == str(tiny_model_dir)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("gpt-4o", "unknown kind"),
        ("self:/models/ckpt-3", "'self:' is no longer a form: write '/models/ckpt-3'"),
        ("openai:", "needs a model"),
        ("openai-compatible:http://host/v1", "URL#MODEL"),
        ("openai-compatible:ftp://host/v1#m", "not an http"),
        ("openai-compatible:http://user:pw@host/v1#m", "holds credentials"),
        ("demo:x", "takes no argument"),
        ("grounded:self", "'grounded' takes no argument; write grounded\\+SPEC"),
        ("grounded+", "'grounded\\+' needs a reflector after the '\\+'"),
        ("grounded+gpt-4o", "its inner reflector 'gpt-4o' is not valid: unknown kind 'gpt-4o'"),
        ("grounded+openai:", "its inner reflector 'openai:' is not valid: 'openai:' needs a model"),
        ("grounded+env-feedback", "env-feedback cannot be grounded: it is a baseline's"),
        ("grounded+demo", "demo cannot be grounded: it is a baseline's"),
        ("grounded+grounded", "grounded cannot be grounded again"),
        ("grounded+grounded+self", "grounded cannot be grounded again"),
    ],
)
def test_bad_specs_list_the_valid_forms(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as raised:
        parse_reflector_spec(text)
    assert "openai-compatible:URL#MODEL" in str(raised.value)
    assert "env-feedback" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "canonical", "inner"),
    [
        ("grounded", "grounded", None),
        ("grounded+self", "grounded+self", "self"),
        ("grounded + openai:gpt-4o-mini", "grounded+openai:gpt-4o-mini", "openai:gpt-4o-mini"),
        (
            "grounded+openai-compatible:http://127.0.0.1:8000/v1#a+b",
            "grounded+openai-compatible:http://127.0.0.1:8000/v1#a+b",
            "openai-compatible:http://127.0.0.1:8000/v1#a+b",
        ),
    ],
)
def test_grounded_specs(text: str, canonical: str, inner: str | None) -> None:
    spec = parse_reflector_spec(text)
    assert spec.kind == "grounded" and str(spec) == canonical
    assert (None if spec.inner is None else str(spec.inner)) == inner
    assert parse_reflector_spec(str(spec)) == spec


def test_a_bad_grounded_spec_is_one_line_naming_it() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_reflector_spec("grounded+gpt-4o")
    first = str(raised.value).splitlines()[0]
    assert first == (
        "invalid reflector spec 'grounded+gpt-4o': its inner reflector 'gpt-4o' is not valid: "
        "unknown kind 'gpt-4o'. Valid forms:"
    )


def test_load_reflector_builds_grounded_alone_and_over_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HERO_REFLECTOR_API_KEY", raising=False)
    alone = load_reflector("grounded", max_concurrency=4, end_of_turn_ids=[2])
    assert isinstance(alone, GroundedReflector) and alone.inner is None
    assert (alone.name, alone.max_concurrency, alone.end_of_turn_ids) == ("grounded", 4, {2})
    with pytest.raises(ConfigError, match="'grounded' alone takes only max_concurrency"):
        load_reflector("grounded", temperature=1.0)

    over = load_reflector("grounded+openai-compatible:http://127.0.0.1:9/v1#m", max_concurrency=3)
    assert isinstance(over, GroundedReflector) and isinstance(over.inner, OpenAIReflector)
    assert over.name == "grounded+openai-compatible:m" and over.max_concurrency == 3
    assert not is_hosted(parse_reflector_spec("grounded+openai-compatible:http://127.0.0.1:9/v1#m"))

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    hosted = load_reflector("grounded+openai:gpt-4o-mini")
    assert is_hosted(parse_reflector_spec("grounded+openai:gpt-4o-mini"))
    # Only the hosted model's input is redacted; the proofs read the trajectory itself.
    assert isinstance(hosted, GroundedReflector) and isinstance(hosted.inner, RedactingReflector)
    assert hosted.name == "grounded+openai:gpt-4o-mini"
    with pytest.raises(ConfigError, match="unknown reflector options"):
        load_reflector("grounded+openai:gpt-4o-mini", temprature=1)


def test_load_reflector_builds_each_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERO_REFLECTOR_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert isinstance(load_reflector("env-feedback"), EnvFeedbackReflector)
    assert isinstance(load_reflector("demo", demos=[]), DemoReflector)
    with pytest.raises(ConfigError, match="needs trajectories"):
        load_reflector("demo")
    with pytest.raises(ConfigError, match="needs an API key"):
        load_reflector("openai:gpt-4o-mini")

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    reflector = load_reflector("openai:gpt-4o-mini", max_concurrency=3)
    assert isinstance(reflector, RedactingReflector)  # hosted: it sees redacted traces
    assert isinstance(reflector.inner, OpenAIReflector)
    assert reflector.name == "openai:gpt-4o-mini" and reflector.max_concurrency == 3
    assert reflector.inner.config.api_key == "sk-from-env"
    assert isinstance(load_reflector("openai:gpt-4o-mini", redaction=None), OpenAIReflector)

    compatible = load_reflector("openai-compatible:http://127.0.0.1:9/v1#m")
    assert compatible.config.api_key is None  # an OpenAI key is not sent to another server
    assert compatible.name == "openai-compatible:m"
    monkeypatch.setenv("HERO_REFLECTOR_API_KEY", "hero-key")
    assert load_reflector("openai-compatible:http://127.0.0.1:9/v1#m").config.api_key == "hero-key"
    with pytest.raises(ConfigError, match="unknown reflector options"):
        load_reflector("openai-compatible:http://127.0.0.1:9/v1#m", temprature=1)
