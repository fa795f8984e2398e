"""The LLM reflector: one chat call per trajectory to any OpenAI-compatible API.

Works with the OpenAI API, Azure OpenAI's v1 endpoint, vLLM, and the in-process policy behind
`LocalChatEndpoint`. Per trajectory:

1. Render the episode once (`hero_agents.reflection.prompt`), split it into windows only if it
   does not fit ``context_tokens``, and ask for every turn of a window in one call.
2. Ask for structured output (a JSON schema) where the server takes it; in ``auto`` mode a
   server that rejects it (HTTP 400) is asked again without, and never again with.
3. Read the reply tolerantly (`hero_agents.reflection.parsing`). An unusable reply (invalid
   JSON, wrong turns, refusal, cut off) is shown back to the model, up to ``format_retries``
   times; then the window is reflected one turn per call. A turn that still fails fails its
   trajectory, which is reported by id with the reason.

HTTP 429, 5xx, connection drops and timeouts are retried with exponential backoff by the
``openai`` client itself (honouring ``Retry-After``); after ``max_retries`` the trajectory
fails. A refused key, an unknown model or an unreachable server raise `ReflectionError` at once.
The API key is held only by the client: it is never logged, cached or part of `name`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import openai

from hero_agents.errors import ConfigError, ReflectionError
from hero_agents.reflection.base import ReflectionResult, ReflectionUsage, Reflector
from hero_agents.reflection.cache import DiagnosisCache, cache_key
from hero_agents.reflection.parsing import ReplyFormatError, parse_diagnoses
from hero_agents.reflection.prompt import (
    PROMPT_VERSION,
    EpisodeView,
    PromptLimits,
    TokenCounter,
    approximate_tokens,
    build_messages,
    clip,
    diagnoses_schema,
    episode_view,
    plan_windows,
)
from hero_agents.trajectory import Diagnosis, Message, Trajectory

logger = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"
StructuredOutput = Literal["auto", "json_schema", "json_object", "off"]

_usage: contextvars.ContextVar[ReflectionUsage | None] = contextvars.ContextVar(
    "hero_reflection_usage", default=None
)


@dataclass
class OpenAIReflectorConfig:
    """Settings of the LLM reflector."""

    model: str = field(metadata={"help": "Model name as the server knows it."})
    base_url: str | None = field(
        default=None, metadata={"help": "API root, e.g. http://127.0.0.1:8000/v1 (None: OpenAI)."}
    )
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={
            "help": "API key; never logged or stored. None: a placeholder for local servers."
        },
    )
    name: str | None = field(
        default=None, metadata={"help": "Reflector id written into diagnoses (default kind:model)."}
    )
    structured_output: StructuredOutput = field(
        default="auto",
        metadata={"help": "json_schema, json_object, off, or auto (json_schema unless refused)."},
    )
    batching: Literal["batched", "per-turn"] = field(
        default="batched",
        metadata={
            "help": "One call per trajectory (batched) or one call per turn (for cost study)."
        },
    )
    temperature: float | None = field(
        default=0.0, metadata={"help": "Sampling temperature; None leaves the server's default."}
    )
    max_concurrency: int = field(
        default=8, metadata={"help": "Trajectories (hence calls) in flight at once."}
    )
    timeout_s: float = field(default=120.0, metadata={"help": "Timeout of one HTTP request."})
    max_retries: int = field(
        default=4, metadata={"help": "Client retries on 408/409/429/5xx/timeouts, with backoff."}
    )
    format_retries: int = field(
        default=2, metadata={"help": "Re-asks, with the error shown, after an unusable reply."}
    )
    per_turn_fallback: bool = field(
        default=True, metadata={"help": "Reflect turn by turn when a batched call stays unusable."}
    )
    context_tokens: int = field(
        default=32_000, metadata={"help": "Reflector context size; longer episodes are windowed."}
    )
    tokens_per_diagnosis: int = field(
        default=120, metadata={"help": "Reply budget per turn (sets max_completion_tokens)."}
    )
    limits: PromptLimits = field(
        default_factory=PromptLimits, metadata={"help": "Length caps on trace text."}
    )
    cache_dir: Path | None = field(
        default=None, metadata={"help": "Directory of the diagnosis cache (None: no cache)."}
    )
    cache_identity: str | None = field(
        default=None,
        metadata={
            "help": "Names the model's weights in the cache key instead of the endpoint's URL "
            "(for a loopback endpoint on a random port, e.g. the self reflector's)."
        },
    )
    exact_schema: bool = field(
        default=False,
        metadata={
            "help": "Send a schema exact for each request (its turn indices, hint length capped): "
            "for local constrained decoders such as the self reflector's, not OpenAI's strict mode."
        },
    )
    kind: str = field(default="openai", metadata={"help": "Spec kind, for the default name."})

    @property
    def reflector_name(self) -> str:
        return self.name or f"{self.kind}:{self.model}"


class _TrajectoryFailure(Exception):
    """This trajectory cannot be diagnosed; the message says why (internal, never escapes)."""


class OpenAIReflector(Reflector):
    """Diagnoses each turn with one chat call per trajectory (see the module docstring)."""

    def __init__(
        self,
        config: OpenAIReflectorConfig,
        *,
        count_tokens: TokenCounter = approximate_tokens,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if config.structured_output not in ("auto", "json_schema", "json_object", "off"):
            raise ConfigError(
                f"structured_output must be auto, json_schema, json_object or off, got "
                f"{config.structured_output!r}"
            )
        if config.batching not in ("batched", "per-turn"):
            raise ConfigError(f"batching must be 'batched' or 'per-turn', got {config.batching!r}")
        self.config = config
        self.name = config.reflector_name
        self.max_concurrency = config.max_concurrency
        self.count_tokens = count_tokens
        self._structured: StructuredOutput = config.structured_output
        self._cache = DiagnosisCache(config.cache_dir) if config.cache_dir else None
        self._on_close = on_close
        self._client: openai.AsyncOpenAI | None = None
        self._sessions = 0

    @property
    def settings(self) -> dict[str, Any]:
        """Everything that can change a diagnosis except the episode (keys the cache)."""
        return {
            "name": self.name,
            "model": self.config.model,
            "base_url": self.config.cache_identity
            or self.config.base_url
            or os.environ.get("OPENAI_BASE_URL", OPENAI_BASE_URL),
            "prompt_version": PROMPT_VERSION,
            "limits": asdict(self.config.limits),
            "temperature": self.config.temperature,
            "mode": self.config.batching,
            "context_tokens": self.config.context_tokens,
            "tokens_per_diagnosis": self.config.tokens_per_diagnosis,
        }

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """An HTTP client for the running event loop, shared by nested and concurrent batches."""
        if self._client is None:
            http_client = openai.DefaultAsyncHttpxClient(event_hooks={"request": [_count_request]})
            self._client = openai.AsyncOpenAI(
                api_key=self.config.api_key or "no-key",
                base_url=self.config.base_url,
                timeout=self.config.timeout_s,
                max_retries=self.config.max_retries,
                http_client=http_client,
            )
        self._sessions += 1
        try:
            yield
        finally:
            self._sessions -= 1
            if self._sessions == 0 and self._client is not None:
                client, self._client = self._client, None
                await client.close()

    def close(self) -> None:
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    async def reflect_one(self, trajectory: Trajectory) -> ReflectionResult:
        usage = ReflectionUsage()
        token = _usage.set(usage)
        try:
            return await self._reflect(trajectory, usage)
        finally:
            _usage.reset(token)

    async def _reflect(self, trajectory: Trajectory, usage: ReflectionUsage) -> ReflectionResult:
        if not trajectory.turns:
            return ReflectionResult.diagnosed(trajectory, [], usage=usage)
        view = episode_view(trajectory, self.config.limits)
        key = cache_key(self.settings, view.fingerprint_text) if self._cache else None
        if self._cache is not None and key is not None:
            cached = self._cache.get(key)
            if cached is not None and [d.turn_index for d in cached] == list(
                range(len(trajectory.turns))
            ):
                return ReflectionResult.diagnosed(trajectory, cached, usage=usage, cached=True)
        try:
            windows = plan_windows(
                view,
                context_tokens=self.config.context_tokens,
                tokens_per_diagnosis=self.config.tokens_per_diagnosis,
                limits=self.config.limits,
                count_tokens=self.count_tokens,
            )
        except ReflectionError as error:
            return ReflectionResult.failed(trajectory, str(error), usage=usage)
        usage.windows = len(windows)
        diagnoses: list[Diagnosis] = []
        try:
            for window in windows:
                diagnoses += await self._diagnose_window(view, window, usage)
        except _TrajectoryFailure as failure:
            logger.info("could not diagnose trajectory %s: %s", trajectory.id, failure)
            return ReflectionResult.failed(trajectory, str(failure), usage=usage)
        if self._cache is not None and key is not None:
            self._cache.put(key, diagnoses)
        return ReflectionResult.diagnosed(trajectory, diagnoses, usage=usage)

    async def _diagnose_window(
        self, view: EpisodeView, window: list[int], usage: ReflectionUsage
    ) -> list[Diagnosis]:
        groups = [[i] for i in window] if self.config.batching == "per-turn" else [window]
        diagnoses: list[Diagnosis] = []
        for targets in groups:
            try:
                diagnoses += await self._ask(view, window, targets, usage)
                continue
            except ReplyFormatError as error:
                if len(targets) == 1 or not self.config.per_turn_fallback:
                    raise _TrajectoryFailure(self._unusable(targets, error)) from None
                logger.info(
                    "turns %s: batched reply unusable (%s); one call per turn", targets, error
                )
            usage.turn_fallbacks += 1
            for target in targets:
                try:
                    diagnoses += await self._ask(view, window, [target], usage)
                except ReplyFormatError as error:
                    raise _TrajectoryFailure(self._unusable([target], error)) from None
        return diagnoses

    def _unusable(self, targets: Sequence[int], error: ReplyFormatError) -> str:
        tries = 1 + self.config.format_retries
        return f"turns {list(targets)}: no usable reply in {tries} tries (last: {error})"

    async def _ask(
        self, view: EpisodeView, window: list[int], targets: list[int], usage: ReflectionUsage
    ) -> list[Diagnosis]:
        """Diagnoses of `targets`, re-asking with the error shown after an unusable reply."""
        request = build_messages(view, targets=targets, window=window, limits=self.config.limits)
        messages = request
        error: ReplyFormatError | None = None
        for attempt in range(1 + self.config.format_retries):
            if attempt:
                usage.format_retries += 1
            text, finish_reason, refusal = await self._complete(messages, targets, usage)
            try:
                if refusal:
                    raise ReplyFormatError(f"the model refused: {clip(refusal, 300)}")
                try:
                    parsed = parse_diagnoses(
                        text,
                        targets,
                        reflector=self.name,
                        max_hint_words=self.config.limits.max_hint_words,
                    )
                except ReplyFormatError as parse_error:
                    if finish_reason == "length":
                        raise ReplyFormatError(
                            "the reply was cut off at the token limit; keep hints short"
                        ) from None
                    raise parse_error
                usage.truncated_hints += parsed.truncated_hints
                return parsed.diagnoses
            except ReplyFormatError as unusable:
                error = unusable
                logger.debug("turns %s, try %d: unusable reply: %s", targets, attempt + 1, error)
                messages = [
                    *request,
                    {"role": "assistant", "content": clip(text or refusal or "", 2000)},
                    {
                        "role": "user",
                        "content": (
                            f"That reply could not be used: {error}. Reply again with only the "
                            f"JSON object, one diagnosis for each of the turns {targets}."
                        ),
                    },
                ]
        assert error is not None
        raise error

    def _response_format(self, targets: Sequence[int]) -> dict[str, Any] | None:
        if self._structured in ("auto", "json_schema"):
            schema = diagnoses_schema()
            if self.config.exact_schema:
                # About 5 characters a word, with its space.
                chars = 5 * self.config.limits.max_hint_words
                schema = diagnoses_schema(targets, max_hint_chars=chars)
            return {
                "type": "json_schema",
                "json_schema": {"name": "diagnoses", "strict": True, "schema": schema},
            }
        if self._structured == "json_object":
            return {"type": "json_object"}
        return None

    async def _complete(
        self, messages: list[Message], targets: Sequence[int], usage: ReflectionUsage
    ) -> tuple[str, str | None, str | None]:
        """One chat completion: (text, finish reason, refusal)."""
        if self._client is None:
            raise ReflectionError(
                "the reflector has no open session: use reflect/areflect/astream, or "
                "'async with reflector.session():' around reflect_one"
            )
        request: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "max_completion_tokens": self.config.tokens_per_diagnosis * len(targets) + 64,
        }
        if self.config.temperature is not None:
            request["temperature"] = self.config.temperature
        response_format = self._response_format(targets)
        try:
            try:
                response = await self._client.chat.completions.create(
                    **request, **({"response_format": response_format} if response_format else {})
                )
            except (openai.BadRequestError, openai.UnprocessableEntityError) as error:
                # The configured mode, not the current one: requests in flight together each
                # carry the schema, and each falls back after whichever refusal came first.
                if self.config.structured_output != "auto" or response_format is None:
                    raise
                if self._structured != "off":
                    logger.warning(
                        "%s rejected structured output (%s); asking without it from now on",
                        self.name,
                        _message(error),
                    )
                    self._structured = "off"
                response = await self._client.chat.completions.create(**request)
        except openai.APITimeoutError:
            raise _TrajectoryFailure(
                f"the request timed out after {self.config.timeout_s:g} s, "
                f"{self.config.max_retries} retries"
            ) from None
        except openai.APIConnectionError as error:
            raise ReflectionError(
                f"{self.name}: cannot reach {self._client.base_url} ({error.__cause__ or error}); "
                "is the server running and the URL right?"
            ) from None
        except openai.AuthenticationError as error:
            raise ReflectionError(
                f"{self.name}: the API key was refused (401: {_message(error)}); set "
                "$HERO_REFLECTOR_API_KEY (or $OPENAI_API_KEY for openai:)"
            ) from None
        except openai.PermissionDeniedError as error:
            raise ReflectionError(
                f"{self.name}: permission denied (403: {_message(error)})"
            ) from None
        except openai.NotFoundError as error:
            raise ReflectionError(
                f"{self.name}: not found (404: {_message(error)}); check the model name and URL"
            ) from None
        except openai.RateLimitError as error:
            raise _TrajectoryFailure(
                f"rate limited (429) after {self.config.max_retries} retries: {_message(error)}"
            ) from None
        except openai.APIStatusError as error:
            raise _TrajectoryFailure(
                f"the server answered {error.status_code}: {_message(error)}"
            ) from None
        usage.calls += 1
        if response.usage is not None:
            usage.prompt_tokens += response.usage.prompt_tokens or 0
            usage.completion_tokens += response.usage.completion_tokens or 0
        if not response.choices:
            return "", None, None
        choice = response.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        return choice.message.content or "", choice.finish_reason, refusal


def _message(error: openai.APIStatusError) -> str:
    return clip(str(error.message), 300)


async def _count_request(request: Any) -> None:
    """An HTTP client hook: count each request (retries included) for this trajectory."""
    usage = _usage.get()
    if usage is not None:
        usage.requests += 1
