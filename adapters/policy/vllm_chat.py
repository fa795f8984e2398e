"""The policy client: a LangChain chat model bound to a vLLM OpenAI-compatible server.

`VLLMChatModel` sends the conversation (and bound tools) to ``/v1/chat/completions`` and asks
for the sampled token ids (vLLM's ``return_token_ids``) and their log-probabilities, so the
trace holds exactly the tokens the server sampled. Like the in-process policy, it puts a
`TokenTrace` dict under ``AIMessage.response_metadata[RESPONSE_METADATA_KEY]``; its
``policy_version`` is the served name that answered (``policy-v3``).

Tool calls are parsed by the server (``--tool-call-parser hermes``) into ``tool_calls``; a
malformed call never raises: it stays in the text and is listed in ``invalid_tool_calls``.

Which version a request goes to: a `PolicyVersions` switch shared with `WeightSync` (each
request leases the current version), else a pinned ``model`` name, else the newest
``policy-v{N}`` the server lists at the time of the request.

If the connection drops (the server died and is being restarted), the request waits for
``/health`` and is sent again, up to ``max_retries`` times; then `PolicyError` is raised. A
failed call records nothing: LangChain reports it as an error, and the rollout reports the
episode as failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from langchain_core.messages.tool import InvalidToolCall, ToolCall, invalid_tool_call, tool_call
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field, PrivateAttr

from hero_agents.adapters.policy.tool_calls import TOOL_CALL_OPEN, parse_tool_calls
from hero_agents.adapters.policy.weight_sync import PolicyVersions, version_number
from hero_agents.errors import ConfigError, PolicyError
from hero_agents.trajectory import RESPONSE_METADATA_KEY, TokenTrace

logger = logging.getLogger(__name__)

SPEC_PREFIX = "vllm"
"""Policy specs naming a vLLM server start with ``vllm:``."""

_CALL_OPTIONS = frozenset(
    {
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "seed",
        "extra_body",
    }
)
"""Keyword arguments accepted at call time (``model.bind(...)`` or ``invoke(..., **kw)``)."""


class VLLMChatModel(BaseChatModel):
    """A LangChain chat model served by vLLM, recording the exact sampled tokens.

    An existing graph only changes its chat model: ``VLLMChatModel(base_url=server.base_url)``.
    """

    base_url: str = Field(description="The OpenAI API root, e.g. http://127.0.0.1:8000/v1.")
    model: str | None = Field(
        default=None,
        description="Pin requests to this served name; None follows the newest version.",
    )
    versions: PolicyVersions | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="Version switch shared with WeightSync; overrides `model`.",
    )
    api_key: str = Field(default="EMPTY", repr=False)
    temperature: float = Field(default=1.0, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=1, description="None keeps every token.")
    max_tokens: int = Field(default=512, ge=1)
    seed: int | None = Field(default=None, description="Per-request sampling seed.")
    request_timeout_s: float = Field(default=600.0, gt=0)
    max_retries: int = Field(default=2, ge=0, description="Resends after a lost connection.")
    reconnect_timeout_s: float = Field(
        default=900.0, gt=0, description="How long to wait for a restarting server's /health."
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="More vLLM request fields (e.g. structured_outputs)."
    )

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _client: openai.OpenAI = PrivateAttr()
    _aclient: openai.AsyncOpenAI | None = PrivateAttr(default=None)
    _aclient_loop: asyncio.AbstractEventLoop | None = PrivateAttr(default=None)
    _base_model: str | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self.base_url = self.base_url.rstrip("/")
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=self.api_key,
            timeout=self.request_timeout_s,
            max_retries=0,  # retries are ours: they wait for a restarting server
        )

    @classmethod
    def from_spec(cls, spec: str, **fields: Any) -> VLLMChatModel:
        """A client from a policy spec: ``vllm:http://host:port/v1`` (follows the newest
        version) or ``vllm:http://host:port/v1#policy-v3`` (pinned); `fields` set the rest."""
        prefix, _, rest = spec.partition(":")
        url, _, name = rest.partition("#")
        if prefix != SPEC_PREFIX or not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{spec!r} is not a vLLM policy spec; write vllm:http://HOST:PORT/v1 or "
                "vllm:http://HOST:PORT/v1#policy-vN"
            )
        if "max_new_tokens" in fields:  # the in-process policy's name for the same limit
            fields["max_tokens"] = fields.pop("max_new_tokens")
        unknown = set(fields) - set(cls.model_fields)
        if unknown:
            raise ConfigError(
                f"VLLMChatModel has no option(s) {sorted(unknown)}; the served version is the "
                "policy version (pin one with #policy-vN)"
            )
        return cls(base_url=url, model=name or None, **fields)

    @property
    def _llm_type(self) -> str:
        return "hero-vllm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "model": self.model,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "max_tokens": self.max_tokens,
        }

    @property
    def server_root(self) -> str:
        """The server's root URL (``base_url`` without ``/v1``)."""
        return self.base_url.removesuffix("/v1")

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools in OpenAI format. `tool_choice`: None/"auto" (the model decides),
        "none", "required" (or LangChain's "any"), or a tool name."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = _tool_choice(tool_choice, formatted)
        return super().bind(tools=formatted, **kwargs)

    # -- generation ---------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        for attempt in range(self.max_retries + 1):
            try:
                with self._target() as served_name:
                    try:
                        response = self._client.chat.completions.create(
                            model=served_name, **request
                        )
                    except openai.APIStatusError as error:
                        raise _status_error(error, self.base_url) from error
                self._base_model_name()
                return self._result(response.model_dump(), served_name, "tools" in request)
            except (openai.APIConnectionError, _ModelGone) as error:
                self._before_retry(error, attempt)
                self._wait_for_health()
        raise AssertionError("unreachable")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, kwargs)
        client = self._async_client()
        for attempt in range(self.max_retries + 1):
            try:
                async with self._atarget() as served_name:
                    try:
                        response = await client.chat.completions.create(
                            model=served_name, **request
                        )
                    except openai.APIStatusError as error:
                        raise _status_error(error, self.base_url) from error
                if self._base_model is None:
                    await asyncio.to_thread(self._base_model_name)
                return self._result(response.model_dump(), served_name, "tools" in request)
            except (openai.APIConnectionError, _ModelGone) as error:
                self._before_retry(error, attempt)
                await asyncio.to_thread(self._wait_for_health)
        raise AssertionError("unreachable")

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The chat-completions arguments (all but ``model``) for this call."""
        unknown = set(kwargs) - _CALL_OPTIONS
        if unknown:
            raise ConfigError(
                f"unsupported generation options for VLLMChatModel: {sorted(unknown)}; "
                f"supported: {sorted(_CALL_OPTIONS)}"
            )
        top_k = kwargs.get("top_k", self.top_k)
        extra_body: dict[str, Any] = {"return_token_ids": True, **self.extra_body}
        extra_body.update(kwargs.get("extra_body") or {})
        if top_k is not None:
            extra_body["top_k"] = top_k
        request: dict[str, Any] = {
            "messages": convert_to_openai_messages(messages),
            "logprobs": True,
            "temperature": kwargs.get("temperature", self.temperature),
            "top_p": kwargs.get("top_p", self.top_p),
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "extra_body": extra_body,
        }
        seed = kwargs.get("seed", self.seed)
        if seed is not None:
            request["seed"] = seed
        if stop:
            request["stop"] = stop
        if kwargs.get("tools"):
            request["tools"] = kwargs["tools"]
            for option in ("tool_choice", "parallel_tool_calls"):
                if kwargs.get(option) is not None:
                    request[option] = kwargs[option]
        return request

    def _result(self, body: dict[str, Any], served_name: str, tools_bound: bool) -> ChatResult:
        """Turn a chat-completions response into an AIMessage with its TokenTrace."""
        choice = body["choices"][0]
        token_ids = choice.get("token_ids")
        content_logprobs = (choice.get("logprobs") or {}).get("content")
        if token_ids is None or content_logprobs is None:
            raise PolicyError(
                f"{self.base_url} returned no sampled token ids or logprobs; the policy server "
                "must be vLLM (return_token_ids needs vLLM >= 0.10)"
            )
        trace = TokenTrace(
            prompt_token_ids=body.get("prompt_token_ids"),
            completion_token_ids=list(token_ids),
            completion_logprobs=[float(entry["logprob"]) for entry in content_logprobs],
            policy_version=body.get("model") or served_name,
            model=self._base_model_name(),
            finish_reason=choice.get("finish_reason"),
        )
        message = choice["message"]
        text = message.get("content") or ""
        calls, invalid = _parse_server_tool_calls(message.get("tool_calls") or [])
        if tools_bound and not calls and not invalid and TOOL_CALL_OPEN in text:
            # The server's parser gave up on the whole text: find the valid and invalid blocks.
            parsed = parse_tool_calls(text)
            text, calls, invalid = parsed.content, parsed.tool_calls, parsed.invalid_tool_calls
        usage = body.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or len(trace.prompt_token_ids or []))
        completion_tokens = int(usage.get("completion_tokens") or len(token_ids))
        ai_message = AIMessage(
            content=text.strip(),
            tool_calls=calls,
            invalid_tool_calls=invalid,
            response_metadata={
                "model_name": trace.policy_version,
                "finish_reason": choice.get("finish_reason"),
                RESPONSE_METADATA_KEY: trace.model_dump(),
            },
            usage_metadata={
                "input_tokens": prompt_tokens,
                "output_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            id=body.get("id"),
        )
        return ChatResult(generations=[ChatGeneration(message=ai_message)])

    # -- which served model -----------------------------------------------------------------

    @contextmanager
    def _target(self) -> Iterator[str]:
        if self.versions is not None:
            with self.versions.lease() as name:
                yield name
        elif self.model is not None:
            yield self.model
        else:
            yield _newest_version(self._list_models())

    @asynccontextmanager
    async def _atarget(self) -> AsyncIterator[str]:
        if self.versions is not None:
            with self.versions.lease() as name:
                yield name
        elif self.model is not None:
            yield self.model
        else:
            page = await self._async_client().models.list()
            yield _newest_version([card.model_dump() for card in page.data])

    def _list_models(self) -> list[dict[str, Any]]:
        return [card.model_dump() for card in self._client.models.list().data]

    def _base_model_name(self) -> str | None:
        """The base model's path on the server (``root`` of its listing), fetched once."""
        if self._base_model is None:
            try:
                cards = self._list_models()
            except openai.OpenAIError:
                return None
            bases = [card for card in cards if not card.get("parent")]
            if bases:
                self._base_model = str(bases[0].get("root") or bases[0]["id"])
        return self._base_model

    def _async_client(self) -> openai.AsyncOpenAI:
        # One client per event loop: asyncio.run() in a loop creates a fresh loop each time.
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._aclient is None or self._aclient_loop is not loop:
                self._aclient = openai.AsyncOpenAI(
                    base_url=self.base_url,
                    api_key=self.api_key,
                    timeout=self.request_timeout_s,
                    max_retries=0,
                )
                self._aclient_loop = loop
            return self._aclient

    # -- reconnecting ---------------------------------------------------------------------

    def _before_retry(self, error: Exception, attempt: int) -> None:
        pinned = self.versions is None and self.model is not None
        if isinstance(error, _ModelGone) and pinned:
            raise PolicyError(f"{error}; this client is pinned to {self.model!r}") from error
        if attempt >= self.max_retries:
            raise PolicyError(
                f"the policy server at {self.base_url} failed the request "
                f"{attempt + 1} time(s): {error}"
            ) from error
        logger.warning(
            "policy request to %s failed (%s); waiting for the server, then retrying (%d/%d)",
            self.base_url,
            error,
            attempt + 1,
            self.max_retries,
        )

    def _wait_for_health(self) -> None:
        deadline = time.monotonic() + self.reconnect_timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.server_root}/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise PolicyError(
            f"the policy server at {self.base_url} did not come back within "
            f"{self.reconnect_timeout_s:.0f} s"
        )


class _ModelGone(PolicyError):
    """The version a request named is no longer served (unloaded or lost in a restart)."""


def _status_error(error: openai.APIStatusError, base_url: str) -> PolicyError:
    message = _server_message(error)
    if error.status_code == 404 and "does not exist" in message:
        return _ModelGone(f"{base_url}: {message}")
    return PolicyError(f"the policy server at {base_url} answered {error.status_code}: {message}")


def _server_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(error)


def _newest_version(cards: list[dict[str, Any]]) -> str:
    """The newest ``policy-v{N}`` in a ``/v1/models`` listing, else the first model."""
    if not cards:
        raise PolicyError("the policy server lists no models")
    numbered = [(version_number(card["id"]), card["id"]) for card in cards]
    versions = [(number, name) for number, name in numbered if number is not None]
    return max(versions)[1] if versions else str(cards[0]["id"])


def _parse_server_tool_calls(
    raw_calls: list[dict[str, Any]],
) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    """OpenAI-format tool calls from the server, split into valid and malformed ones."""
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for raw in raw_calls:
        function = raw.get("function") or {}
        name = function.get("name")
        arguments = function.get("arguments")
        try:
            args = json.loads(arguments) if arguments else {}
        except json.JSONDecodeError as error:
            invalid.append(
                invalid_tool_call(
                    name=name,
                    args=arguments,
                    id=raw.get("id"),
                    error=f"tool call arguments are not valid JSON: {error}",
                )
            )
            continue
        if not name or not isinstance(args, dict):
            invalid.append(
                invalid_tool_call(
                    name=name,
                    args=arguments,
                    id=raw.get("id"),
                    error="tool call needs a name and a JSON object of arguments",
                )
            )
            continue
        calls.append(tool_call(name=name, args=args, id=raw.get("id")))
    return calls, invalid


def _tool_choice(choice: str | dict[str, Any], tools: list[dict[str, Any]]) -> str | dict:
    """LangChain's tool_choice forms as OpenAI's."""
    if isinstance(choice, dict):
        return choice
    if choice in ("auto", "none", "required"):
        return choice
    if choice == "any":
        return "required"
    names = [tool["function"]["name"] for tool in tools]
    if choice not in names:
        raise ConfigError(f"tool_choice {choice!r} is not one of the bound tools {names}")
    return {"type": "function", "function": {"name": choice}}
