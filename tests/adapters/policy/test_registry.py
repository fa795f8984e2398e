"""Policy specs: a model folder, the default model, and clear errors for anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

import hero_agents.adapters.policy as policy_package
from hero_agents.adapters.policy import TransformersChatModel, load_policy
from hero_agents.errors import ConfigError


def test_a_model_folder_loads_in_process(tiny_model_dir: Path) -> None:
    model = load_policy(str(tiny_model_dir), temperature=0, max_new_tokens=3, policy_version="v7")
    assert isinstance(model, TransformersChatModel)
    assert (model.temperature, model.max_new_tokens, model.policy_version) == (0, 3, "v7")
    assert model.model_name == str(tiny_model_dir)


def test_unknown_spec_lists_the_valid_forms(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder") as info:
        load_policy("gpt-17")
    for form in ("default", "PATH", "vllm:URL[#NAME]"):
        assert form in str(info.value)
    assert "openai:" not in str(info.value)  # not a policy form
    with pytest.raises(ConfigError, match=r"without config\.json"):
        load_policy(str(tmp_path))
    with pytest.raises(ConfigError, match="a policy cannot be 'openai:MODEL'"):
        load_policy("openai:gpt-4o")


def test_default_takes_no_argument() -> None:
    with pytest.raises(ConfigError, match="no argument"):
        load_policy("default:big")


def test_package_exports_resolve() -> None:
    assert sorted(policy_package.__all__) == sorted(policy_package._EXPORTS)
    for name in policy_package.__all__:
        assert getattr(policy_package, name) is not None
    with pytest.raises(AttributeError):
        policy_package.NoSuchThing  # noqa: B018


@pytest.mark.slow
def test_default_spec_loads_smollm2() -> None:
    model = load_policy("default", max_new_tokens=4)
    assert isinstance(model, TransformersChatModel)
    assert model.model_name == "SmolLM2-135M-Instruct"
    assert model.model.config.model_type == "llama"
