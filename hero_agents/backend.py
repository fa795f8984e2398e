"""What the training loop needs from the side that serves the policy: `PolicyBackend`.

Concrete backends live in `hero_agents.adapters.policy.backends` (the in-process model, a
local vLLM server); the command line picks one, and the loop only sees this interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from langchain_core.language_models import BaseChatModel

from hero_agents.reflection.base import Reflector


@runtime_checkable
class PolicyBackend(Protocol):
    """Sampling from the current policy, and serving each new adapter as it is trained."""

    @property
    def where(self) -> str:
        """Where the policy runs, in words (e.g. ``in process on cuda:0 (torch.bfloat16)``)."""
        ...

    def policy(
        self, *, temperature: float, max_new_tokens: int, top_p: float = 1.0
    ) -> BaseChatModel:
        """A chat model sampling from the current weights with these settings."""
        ...

    def self_reflector(self, **options: Any) -> Reflector:
        """The ``self`` reflector: the current policy diagnosing its own episodes."""
        ...

    def sync(self, adapter: Path, *, version: str, reference_model: Any | None = None) -> str:
        """Serve the warm-started weights plus `adapter` from now on; returns the version."""
        ...

    def reseed(self, seed: int) -> None:
        """Seed sampling (where the backend can)."""
        ...

    def reset(self) -> None:
        """Serve the warm-started weights again (before another run on the same backend)."""
        ...

    def close(self) -> None:
        """Release the backend (stop a server)."""
        ...
