"""An in-process policy: a LangChain chat model over a transformers causal LM.

`TransformersChatModel` renders the conversation (and bound tools) with the model's own chat
template (`ChatTemplate`: text in the messages never becomes a special token), samples a
completion with a KV cache, parses Hermes-style tool calls out of it, and returns the sampled
token ids with their raw log-probabilities (log-softmax of the unprocessed logits, as vLLM
reports by default) under ``AIMessage.response_metadata[RESPONSE_METADATA_KEY]``
as a `TokenTrace` dict. Concurrent calls (episodes in flight) are sampled together in batches,
with the prompts' common prefix cached (`BatchedSampler`).

The model runs on one device (`device.resolve_device`): on a CUDA GPU it samples in bf16 where
the GPU supports it, on the CPU in fp32. The weights can change between calls (`load_adapter`,
`load_state_dict`): each completion records the version it was sampled with. An adapter is
merged in full precision and only then cast to the sampling dtype, so the policy holds exactly
the trainer's merged weights in its own dtype.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from jinja2 import TemplateError
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from hero_agents.adapters.policy.batched_sampler import BatchedSampler, SamplingParams
from hero_agents.adapters.policy.structured_output import grammar_for
from hero_agents.adapters.policy.tool_calls import parse_tool_calls
from hero_agents.chat_template import ChatTemplate
from hero_agents.device import resolve_device, sampling_dtype
from hero_agents.errors import ConfigError, PolicyError
from hero_agents.trajectory import RESPONSE_METADATA_KEY, Message, TokenTrace, ToolSchema

logger = logging.getLogger(__name__)

_STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
"""Tokens that end an assistant turn in ChatML templates, besides the configured eos ids."""


class TransformersChatModel(BaseChatModel):
    """A LangChain chat model that samples from a transformers causal LM in this process.

    Thread-safe: concurrent calls (several graph runs) are sampled together, up to `max_batch`
    at once. ``temperature=0`` is greedy decoding; a fixed ``seed`` makes a sequence of calls
    reproducible. Copies (``model_copy``) share the weights, the sampler and its version.
    """

    model: Any = Field(exclude=True, repr=False, description="A transformers causal LM.")
    tokenizer: Any = Field(
        exclude=True, repr=False, description="Its tokenizer, with a chat template."
    )
    model_name: str = Field(
        default="", description="Recorded in traces; defaults to the model's path."
    )
    policy_version: str = Field(
        default="base", description="Version tag of the weights, recorded with every action."
    )
    temperature: float = Field(default=1.0, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1, description="None keeps every token.")
    max_new_tokens: int = Field(default=512, ge=1)
    seed: int | None = Field(default=None, description="Seed of this model's own sampler.")
    max_batch: int = Field(default=8, ge=1, description="Most completions sampled at once.")
    response_format: dict[str, Any] | None = Field(
        default=None,
        description="Structured output, as in OpenAI's API: {'type': 'json_schema', "
        "'json_schema': {'schema': ...}} or {'type': 'json_object'} (constrained decoding).",
    )

    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _template: ChatTemplate = PrivateAttr()
    _generator: torch.Generator = PrivateAttr()
    _sampler: BatchedSampler = PrivateAttr()
    _base_state: dict[str, torch.Tensor] | None = PrivateAttr(default=None)
    _folder: Path | None = PrivateAttr(default=None)
    _initial: str = PrivateAttr(default="base")

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        if not isinstance(self.model, PreTrainedModel):
            raise PolicyError(
                f"model must be a transformers PreTrainedModel, got {type(self.model)}"
            )
        if not isinstance(self.tokenizer, PreTrainedTokenizerBase):
            raise PolicyError(
                f"tokenizer must be a transformers tokenizer, got {type(self.tokenizer)}"
            )
        if not self.tokenizer.chat_template:
            raise PolicyError(
                f"the tokenizer of {self.model_name or 'this model'} has no chat template; set "
                "tokenizer.chat_template (e.g. TRL's trl/chat_templates/qwen2_5.jinja)"
            )
        if not self.model_name:
            self.model_name = str(getattr(self.model, "name_or_path", "") or "transformers")
        self._template = ChatTemplate(self.tokenizer)
        stop_ids = frozenset(_stop_token_ids(self.model, self.tokenizer))
        if not stop_ids:
            raise PolicyError(f"{self.model_name}: no end-of-turn token (eos) is configured")
        pad_id = self.tokenizer.pad_token_id
        self._sampler = BatchedSampler(
            self.model,
            self.tokenizer,
            stop_ids=stop_ids,
            pad_id=pad_id if pad_id is not None else min(stop_ids),
            max_batch=self.max_batch,
            policy_version=self.policy_version,
        )
        self._initial = self.policy_version
        self._generator = torch.Generator(device=self.model.device)
        if self.seed is None:
            self._generator.seed()
        else:
            self._generator.manual_seed(self.seed)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str | torch.device = "auto",
        dtype: torch.dtype | None = None,
        **fields: Any,
    ) -> TransformersChatModel:
        """Load a model folder (weights, tokenizer, chat template) onto `device` (``auto``,
        ``cpu``, ``cuda``, ``cuda:N``), to sample in `dtype` (by default bf16 on a GPU that
        supports it, else fp32); `fields` set sampling params, `policy_version`, `model_name`..."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise PolicyError(f"{path} is not a transformers model folder (no config.json)")
        target = resolve_device(device)
        dtype = dtype or sampling_dtype(target)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(target)
        model.eval()
        fields.setdefault("model_name", str(path))
        policy = cls(model=model, tokenizer=tokenizer, **fields)
        policy._folder = path
        logger.info("policy %s loaded on %s (%s)", policy.model_name, target, dtype)
        return policy

    @property
    def _llm_type(self) -> str:
        return "hero-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "policy_version": self.policy_version,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_new_tokens": self.max_new_tokens,
        }

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools in OpenAI format; the chat template renders them into the prompt.

        Only ``tool_choice=None`` or ``"auto"`` is supported: the model decides.
        """
        if tool_choice not in (None, "auto"):
            raise ConfigError(
                f"tool_choice={tool_choice!r} is not supported by TransformersChatModel; "
                "use None or 'auto' (the model decides whether to call a tool)"
            )
        return super().bind(tools=[convert_to_openai_tool(tool) for tool in tools], **kwargs)

    def prompt_ids(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None = None
    ) -> list[int]:
        """The token ids the model continues: OpenAI `messages` and `tools` through the chat
        template, ending with the assistant generation prompt. Only the template's own markers
        are special tokens (as in distillation's examples; see `ChatTemplate`)."""
        for index, message in enumerate(messages):
            if not isinstance(message.get("content", ""), str | None):
                raise PolicyError(
                    f"message {index} ({message.get('role')}) has non-text content blocks; "
                    "TransformersChatModel renders text only"
                )
        try:
            prompt = self._template.render(messages, tools, add_generation_prompt=True)
        except TemplateError as exc:
            raise PolicyError(f"{self.model_name}: the chat template failed: {exc}") from exc
        # Hugging Face fast tokenizers are not safe to share across threads: lock them.
        with self._lock:
            return self._template.encode(prompt)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        *,
        tools: list[ToolSchema] | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        unknown = set(kwargs) - {"tool_choice"}
        if unknown:
            raise ConfigError(f"unsupported generation options: {sorted(unknown)}")
        prompt_ids = self.prompt_ids(convert_to_openai_messages(messages), tools)
        sample = self._sampler.sample(
            prompt_ids, self._sampling_params(len(prompt_ids), stop), self._generator
        )
        token_ids, logprobs = sample.token_ids, sample.logprobs
        finish_reason, version = sample.finish_reason, sample.policy_version
        ends_with_stop = bool(token_ids) and token_ids[-1] in self._sampler.stop_ids
        text_ids = token_ids[:-1] if ends_with_stop else token_ids
        with self._lock:
            text = self.tokenizer.decode(text_ids, skip_special_tokens=True)
        for stop_string in stop or []:
            text = text.split(stop_string, 1)[0]
        trace = TokenTrace(
            prompt_token_ids=prompt_ids,
            completion_token_ids=token_ids,
            completion_logprobs=logprobs,
            policy_version=version,
            model=self.model_name,
            finish_reason=finish_reason,
        )
        response_metadata = {
            "model_name": self.model_name,
            "finish_reason": finish_reason,
            RESPONSE_METADATA_KEY: trace.model_dump(),
        }
        usage = {
            "input_tokens": len(prompt_ids),
            "output_tokens": len(token_ids),
            "total_tokens": len(prompt_ids) + len(token_ids),
        }
        if tools:
            parsed = parse_tool_calls(text)
            message = AIMessage(
                content=parsed.content,
                tool_calls=parsed.tool_calls,
                invalid_tool_calls=parsed.invalid_tool_calls,
                response_metadata=response_metadata,
                usage_metadata=usage,
            )
        else:
            message = AIMessage(
                content=text.strip(), response_metadata=response_metadata, usage_metadata=usage
            )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _sampling_params(self, prompt_length: int, stop: list[str] | None) -> SamplingParams:
        context = getattr(self.model.config, "max_position_embeddings", None)
        budget = self.max_new_tokens
        if context is not None:
            if prompt_length >= context:
                raise PolicyError(
                    f"{self.model_name}: the prompt has {prompt_length} tokens but the model's "
                    f"context is {context}; shorten the conversation or the tool descriptions"
                )
            budget = min(budget, context - prompt_length)
        grammar = None
        if self.response_format is not None:
            grammar = _grammar(json.dumps(self.response_format, sort_keys=True))
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            max_new_tokens=budget,
            stop=tuple(stop or ()),
            grammar=grammar,
        )

    def reseed(self, seed: int) -> None:
        """Restart this model's (and its copies') sampler from `seed`."""
        self._generator.manual_seed(seed)

    # ---- weight updates

    def load_state_dict(self, state_dict: dict[str, torch.Tensor], *, version: str) -> None:
        """Replace (some of) the weights with `state_dict` between two batches; completions
        sampled afterwards record `version`."""
        self._sampler.update(
            lambda model: model.load_state_dict(state_dict, strict=False), version=version
        )
        self.policy_version = version

    def restore_initial_weights(self) -> None:
        """Serve the weights this model was loaded with again (its first version)."""
        if self._base_state is None:
            return  # never changed by load_adapter; load_state_dict changes are the caller's
        base = self._base_state
        self._sampler.update(lambda model: model.load_state_dict(base), version=self._initial)
        self.policy_version = self._initial

    def _initial_state(self) -> dict[str, torch.Tensor]:
        """The first version's weights in full precision, kept on the CPU: read again from the
        model folder when the model samples in a lower precision, else copied from the model."""
        if self._base_state is None:
            lowered = any(p.dtype.itemsize < 4 for p in self.model.parameters())
            if lowered and self._folder is not None:
                full = AutoModelForCausalLM.from_pretrained(self._folder, dtype=torch.float32)
                state = full.state_dict()
            else:
                state = {
                    name: value.detach().to("cpu", _full_precision(value.dtype), copy=True)
                    for name, value in self.model.state_dict().items()
                }
            self._base_state = state
        return self._base_state

    def load_adapter(self, path: str | Path, *, version: str) -> None:
        """Serve the initial weights plus the PEFT (LoRA) adapter saved at `path`, merged in,
        from the next batch on; completions sampled afterwards record `version`.

        Each call starts again from the initial weights, so adapters do not stack. The merge is
        done in full precision (as the trainer's own merge), then cast to the sampling dtype.
        """
        from peft import PeftConfig, PeftModel

        path = Path(path)
        try:
            PeftConfig.from_pretrained(str(path))
        except (ValueError, OSError) as error:
            raise PolicyError(f"{path} is not a PEFT adapter folder: {error}") from None
        base = self._initial_state()

        def apply(model: PreTrainedModel) -> None:
            model.load_state_dict(base)  # buffers too; parameters are swapped to fp32 next
            with _parameters_in_full_precision(model, base):
                merged = PeftModel.from_pretrained(
                    model, str(path), torch_device=str(model.device)
                ).merge_and_unload()
            if merged is not model:  # peft merges in place into the module it was given
                model.load_state_dict(merged.state_dict())

        self._sampler.update(apply, version=version)
        self.policy_version = version


def _full_precision(dtype: torch.dtype) -> torch.dtype:
    """fp32 for a lower floating-point precision; any other dtype as it is."""
    return torch.promote_types(dtype, torch.float32) if dtype.is_floating_point else dtype


@contextmanager
def _parameters_in_full_precision(
    model: PreTrainedModel, state: dict[str, torch.Tensor]
) -> Iterator[None]:
    """Within: `model`'s parameters hold `state`'s full-precision values (on their devices);
    after: cast back to their own dtypes. Buffers (rotary frequencies) are not touched."""
    parameters = list(model.named_parameters())
    dtypes = [parameter.dtype for _, parameter in parameters]
    for name, parameter in parameters:
        parameter.data = state[name].to(parameter.device, copy=True)
    try:
        yield
    finally:
        for (_, parameter), dtype in zip(parameters, dtypes, strict=True):
            parameter.data = parameter.data.to(dtype)


@functools.lru_cache(maxsize=32)
def _grammar(response_format: str) -> str:
    return grammar_for(json.loads(response_format))


def _stop_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """The eos ids of the generation config and tokenizer, plus ChatML end-of-turn tokens."""
    ids: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[token] for token in _STOP_TOKENS if token in vocab)
    return ids
