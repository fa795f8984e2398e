"""Policies from their specs (``--policy default``), and model folders checked before use.

The spec grammar is `hero_agents.model_spec`'s, shared by the policy, reflectors and user
simulators; a policy is ``default``, a model folder (both in process) or ``vllm:URL[#NAME]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from hero_agents.errors import ConfigError
from hero_agents.model_spec import POLICY_KINDS, ModelSpec, parse_model_spec


def load_policy(spec: str | ModelSpec, *, device: str = "auto", **overrides: Any) -> BaseChatModel:
    """The chat model a policy spec names (`hero_agents.model_spec`: ``default``, a model
    folder, or ``vllm:URL[#NAME]``); an in-process one on `device` (``auto``: a CUDA GPU when
    torch sees one, else the CPU). `overrides` go to its backend (``temperature``,
    ``max_new_tokens``, ``seed``, ``policy_version``...)."""
    from hero_agents.adapters.policy.transformers_chat import TransformersChatModel

    parsed = (
        parse_model_spec(spec, kinds=POLICY_KINDS, role="policy") if isinstance(spec, str) else spec
    )
    if parsed.kind == "vllm":
        from hero_agents.adapters.policy.vllm_chat import VLLMChatModel

        return VLLMChatModel.from_spec(str(parsed), **overrides)
    if parsed.kind == "default":
        from hero_agents.adapters.policy.default_model import DEFAULT_MODEL_NAME

        overrides.setdefault("model_name", DEFAULT_MODEL_NAME)
    return TransformersChatModel.from_pretrained(
        model_folder(str(parsed)), device=device, **overrides
    )


def check_model_folder(path: Path, *, name: str = "model folder") -> Path:
    """`path`, once transformers can read its config and tokenizer; else one `ConfigError`
    line that says why (a ``config.json`` of ``{}``, a missing tokenizer...)."""
    from transformers import AutoConfig, AutoTokenizer

    for part, load in (("config", AutoConfig), ("tokenizer", AutoTokenizer)):
        try:
            load.from_pretrained(path)
        except Exception as error:  # transformers raises ValueError, OSError, KeyError...
            reason = " ".join(str(error).split())[:300]
            raise ConfigError(
                f"{name} {str(path)!r}: transformers cannot load its {part}: {reason}"
            ) from None
    return path


def model_folder(model: str) -> Path:
    """The transformers folder a model spec names (a policy, a reflector, a run's ``model``):
    ``default`` is the embedded SmolLM2-135M-Instruct (converted on first use); anything else
    must be a model folder. Errors name the folder, not an option: callers differ."""
    if model == "default":
        from hero_agents.adapters.policy.default_model import default_model_path

        return default_model_path()
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"{model!r} is neither 'default' nor a Hugging Face model folder "
            "(a folder with config.json, weights and a tokenizer)"
        )
    return check_model_folder(path)
