"""The data model: what an agent did (Turn, Trajectory) and what hindsight says of it (Diagnosis).

Messages are stored in OpenAI chat format (plain dicts with ``role``, ``content``,
``tool_calls``, ``tool_call_id``...) so a trace can be replayed into any chat template or API.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
"""Version of the JSONL record layout; bumped on any incompatible change."""

RESPONSE_METADATA_KEY = "hero"
"""Key under ``AIMessage.response_metadata`` where policy backends put a `TokenTrace` dict."""

Message = dict[str, Any]
"""One chat message in OpenAI format."""

ToolSchema = dict[str, Any]
"""One tool in OpenAI function-calling format: ``{"type": "function", "function": {...}}``."""


class TokenTrace(BaseModel):
    """The exact tokens a backend sampled for one action, and their log-probabilities.

    ``completion_logprobs[i]`` is the log-probability of ``completion_token_ids[i]`` under the
    raw model distribution (temperature 1, no top-k/top-p), as vLLM reports by default.
    """

    model_config = ConfigDict(extra="forbid")

    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int]
    completion_logprobs: list[float] | None = None
    policy_version: str | None = None
    model: str | None = None
    finish_reason: str | None = Field(
        default=None,
        description="Why sampling stopped: 'stop' (the turn ended) or 'length' (the token "
        "budget ran out), as OpenAI-compatible servers report it; None if not recorded.",
    )

    @model_validator(mode="after")
    def _lengths_match(self) -> TokenTrace:
        if self.completion_logprobs is not None and len(self.completion_logprobs) != len(
            self.completion_token_ids
        ):
            raise ValueError(
                f"completion_logprobs has {len(self.completion_logprobs)} entries but "
                f"completion_token_ids has {len(self.completion_token_ids)}"
            )
        return self


class Turn(BaseModel):
    """One policy call: the context it saw, the action it took, and what came back."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, description="Position of this turn in its trajectory.")
    messages: list[Message] = Field(description="The exact chat context the policy saw.")
    tools: list[ToolSchema] = Field(default_factory=list, description="Tools bound to the call.")
    action: Message = Field(description="The assistant message the policy produced.")
    observation: list[Message] = Field(
        default_factory=list,
        description="Every message produced after the action and before the next policy call.",
    )
    node: str | None = Field(default=None, description="The LangGraph node that made the call.")
    policy_version: str | None = None
    tokens: TokenTrace | None = Field(default=None, description="Sampled tokens, if known.")

    @model_validator(mode="after")
    def _action_is_assistant(self) -> Turn:
        if self.action.get("role") != "assistant":
            raise ValueError(f"turn {self.index}: action must have role 'assistant'")
        return self

    def to_openai(self, *, include_action: bool = True) -> dict[str, Any]:
        """The turn as an OpenAI chat request body: ``{"messages": [...], "tools": [...]}``."""
        messages = [*self.messages, self.action] if include_action else list(self.messages)
        body: dict[str, Any] = {"messages": messages}
        if self.tools:
            body["tools"] = list(self.tools)
        return body

    @property
    def tool_errors(self) -> int:
        """How many tool results in the observation are errors."""
        return sum(1 for m in self.observation if is_tool_error(m))


class Diagnosis(BaseModel):
    """Hindsight judgement of one turn's action, and the hint its self-teacher sees."""

    model_config = ConfigDict(extra="forbid")

    turn_index: int = Field(ge=0)
    necessity: Literal["necessary", "unnecessary"]
    validity: Literal["valid", "invalid"]
    cause: str | None = Field(default=None, description="Why the action failed, if it did.")
    hint: str = Field(
        description="Compact advice for this decision point (about 40 words); empty: no advice, "
        "the teacher sees what the student sees."
    )
    reflector: str = Field(description="Which reflector wrote this diagnosis.")
    overridden: dict[Literal["necessity", "validity", "cause"], str | None] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,  # absent from files unless something was
        description="The fields a grounded reflector replaced with what the trace proves, "
        "mapped to what the reflector beneath it had written.",
    )


Source = Literal["rollout", "production"]


class Trajectory(BaseModel):
    """One episode: its turns in order, its outcome, and (after reflection) its diagnoses."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    id: str
    task_id: str | None = None
    env: str | None = Field(default=None, description="Environment name, e.g. 'tau2:mock'.")
    turns: list[Turn] = Field(default_factory=list)
    reward: float | None = None
    reward_info: dict[str, Any] = Field(default_factory=dict)
    termination: str | None = Field(
        default=None, description="Why the episode ended: 'stop', 'max_turns', 'error', ..."
    )
    source: Source = "rollout"
    diagnoses: list[Diagnosis] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Trajectory:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"unknown schema_version {self.schema_version} (this hero-agents reads "
                f"{SCHEMA_VERSION})"
            )
        for position, turn in enumerate(self.turns):
            if turn.index != position:
                raise ValueError(f"turn at position {position} has index {turn.index}")
        if self.diagnoses is not None:
            indices = [d.turn_index for d in self.diagnoses]
            if indices != list(range(len(self.turns))):
                raise ValueError(
                    f"diagnoses cover turns {indices}, expected 0..{len(self.turns) - 1}"
                )
        return self

    @property
    def tool_errors(self) -> int:
        return sum(turn.tool_errors for turn in self.turns)

    @property
    def tool_calls(self) -> int:
        return sum(len(turn.action.get("tool_calls") or []) for turn in self.turns)


def is_tool_error(message: Message) -> bool:
    """True for a tool result that reports an error (LangChain's ``status="error"``)."""
    return message.get("role") == "tool" and message.get("status") == "error"
