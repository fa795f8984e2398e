"""Weight sync: trained LoRA adapters hot-loaded into a running vLLM server, version-tagged.

After a training step, `WeightSync.push(model)` saves the adapter to ``policy-v{N}/``, loads it
into the server under the new name ``policy-v{N}`` (never in place over an old name, so a stale
adapter cannot be served under a new tag), checks that the server really serves it (a probe
text's teacher-forced log-probs from the server must match the trainer's model within a
tolerance), then switches new requests to it and unloads older versions that no request uses
any more. A load or check that fails leaves the previous version serving and raises
`PolicyError`.

`PolicyVersions` is the switch: chat clients lease the current version name for the length of
a request, so a version is unloaded only after its last request has come back.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from hero_agents.adapters.policy.vllm_server import BASE_VERSION, PolicyServer
from hero_agents.errors import PolicyError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

VERSION_PATTERN = re.compile(r"^policy-v(\d+)$")
"""Served names of policy versions: ``policy-v0`` is the base weights, then one per sync."""

DEFAULT_PROBE = (
    "<|im_start|>user\nFind order 1042 and cancel it, please.<|im_end|>\n"
    '<|im_start|>assistant\n<tool_call>\n{"name": "cancel_order", "arguments": '
    '{"order_id": "1042"}}\n</tool_call><|im_end|>\n'
)
"""Text whose teacher-forced log-probs compare the served adapter with the trainer's."""


def version_name(number: int) -> str:
    """The served name of policy version `number` (``policy-v3``)."""
    return f"policy-v{number}"


def version_number(name: str) -> int | None:
    """The number of a ``policy-v{N}`` name, or None for any other name."""
    match = VERSION_PATTERN.match(name)
    return int(match.group(1)) if match else None


class PolicyVersions:
    """Which served model new requests use, and how many requests are in flight per version.

    Thread-safe; shared by the chat clients (which `lease` a version per request) and
    `WeightSync` (which `switch`es and unloads versions once they are idle).
    """

    def __init__(self, current: str = BASE_VERSION) -> None:
        self._lock = threading.Lock()
        self._current = current
        self._in_flight: Counter[str] = Counter()
        self._loaded: set[str] = {current}

    @property
    def current(self) -> str:
        """The version new requests are sent to."""
        with self._lock:
            return self._current

    @contextmanager
    def lease(self) -> Iterator[str]:
        """Hold the current version for one request: it is not unloaded until released."""
        with self._lock:
            name = self._current
            self._in_flight[name] += 1
        try:
            yield name
        finally:
            with self._lock:
                self._in_flight[name] -= 1
                if self._in_flight[name] <= 0:
                    del self._in_flight[name]

    def in_flight(self, name: str) -> int:
        """Requests currently holding version `name`."""
        with self._lock:
            return self._in_flight.get(name, 0)

    def switch(self, name: str) -> str:
        """Send new requests to `name`; returns the previous current version."""
        with self._lock:
            previous, self._current = self._current, name
            self._loaded.add(name)
            return previous

    def idle(self, keep: Sequence[str] = ()) -> list[str]:
        """Loaded versions that are not current, not in `keep`, and have no request in flight."""
        with self._lock:
            return sorted(
                name
                for name in self._loaded
                if name != self._current and name not in keep and not self._in_flight.get(name)
            )

    def forget(self, name: str) -> None:
        """Mark `name` as no longer loaded on the server."""
        with self._lock:
            self._loaded.discard(name)

    @property
    def loaded(self) -> list[str]:
        with self._lock:
            return sorted(self._loaded)


@dataclass(frozen=True)
class ProbeCheck:
    """How the served version's probe log-probs compare with the trainer's."""

    version: str
    tokens: int
    mean_abs_diff: float
    max_abs_diff: float


class WeightSync:
    """Publishes trained LoRA adapters to a vLLM server as ``policy-v1``, ``policy-v2``, ...

    Args:
        server: the `PolicyServer` (then a restart preloads the latest adapter), or the root URL
            of a vLLM server started elsewhere with ``--enable-lora`` and
            ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``.
        adapter_root: where `push` saves adapters (``<adapter_root>/policy-v{N}``); by default
            ``<run_dir>/adapters`` of the server. Saved adapters are never overwritten.
        versions: the switch shared with the chat clients (a new one if None).
        base_version: the served name of the base weights.
        probe: the text whose teacher-forced log-probs verify a loaded adapter.
        tolerance: largest mean absolute log-prob difference (nats per token) accepted between
            the server and the trainer on the probe. fp32 on both sides agrees to about 1e-5;
            a bf16 server against an fp32 trainer to a few 1e-2.
        timeout_s: HTTP timeout of load, unload and probe requests.
    """

    def __init__(
        self,
        server: PolicyServer | str,
        *,
        adapter_root: str | Path | None = None,
        versions: PolicyVersions | None = None,
        base_version: str | None = None,
        probe: str = DEFAULT_PROBE,
        tolerance: float = 0.05,
        timeout_s: float = 300.0,
    ) -> None:
        if isinstance(server, PolicyServer):
            self.server: PolicyServer | None = server
            self.url = server.url
            base_version = base_version or server.served_model_name
            default_root = server.run_dir / "adapters"
        else:
            self.server = None
            self.url = server.rstrip("/").removesuffix("/v1")
            base_version = base_version or BASE_VERSION
            default_root = None
        self.adapter_root = Path(adapter_root) if adapter_root is not None else default_root
        self.base_version = base_version
        self.versions = versions if versions is not None else PolicyVersions(base_version)
        self.probe = probe
        self.tolerance = tolerance
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._next_number: int | None = None

    @property
    def current(self) -> str:
        """The version new requests are sent to."""
        return self.versions.current

    # -- publishing ------------------------------------------------------------------------

    def push(self, model: Any) -> str:
        """Save `model`'s LoRA adapter, hot-load it as the next version, verify it against
        `model` itself, switch new requests to it and unload idle versions.

        `model` is the trainer's `peft.PeftModel`. Returns the new version name.
        """
        from peft import PeftModel

        if not isinstance(model, PeftModel):
            raise PolicyError(
                f"WeightSync.push needs a peft.PeftModel (a LoRA adapter), got "
                f"{type(model).__name__}; full-weight sync is documented in docs/serving.md"
            )
        if self.adapter_root is None:
            raise PolicyError(
                "WeightSync has no adapter_root to save adapters in; pass adapter_root= when "
                "the server is given by URL"
            )
        with self._lock:
            name = self._claim_name()
            path = (self.adapter_root / name).resolve()
            if path.exists():
                raise PolicyError(
                    f"{path} already exists; adapters are never overwritten (a served version "
                    "may still read it). Use a fresh adapter_root for a new run."
                )
            model.save_pretrained(str(path))
            return self._publish(name, path, reference_model=model)

    def load_adapter(self, path: str | Path, *, reference_model: Any | None = None) -> str:
        """Hot-load a saved adapter folder as the next version and switch new requests to it.

        With `reference_model` (the model the adapter was saved from) the served log-probs are
        verified against it; without, only the server's listing of the new version is checked.
        The folder must stay unchanged while the version is served. Returns the version name.
        """
        path = Path(path)
        if not (path / "adapter_config.json").is_file():
            raise PolicyError(
                f"{path} is not a saved PEFT adapter (no adapter_config.json); save it with "
                "model.save_pretrained(path)"
            )
        with self._lock:
            name = self._claim_name()
            return self._publish(name, path.resolve(), reference_model=reference_model)

    def unload_idle(self) -> list[str]:
        """Unload every version that is not current and has no request in flight."""
        unloaded = []
        for name in self.versions.idle(keep=[self.base_version]):
            response = self._post("/v1/unload_lora_adapter", {"lora_name": name})
            if response.status_code == 200 or response.status_code == 404:
                # 404: already gone, e.g. the server restarted with only the latest adapter.
                self.versions.forget(name)
                unloaded.append(name)
                logger.info("unloaded %s", name)
            else:
                logger.warning("unloading %s failed: %s", name, response.text)
        return unloaded

    def served_models(self) -> dict[str, dict[str, Any]]:
        """The server's ``/v1/models`` listing, by name."""
        try:
            response = httpx.get(f"{self.url}/v1/models", timeout=self.timeout_s)
            response.raise_for_status()
        except httpx.HTTPError as error:
            raise PolicyError(f"cannot list the models of {self.url}: {error}") from error
        return {card["id"]: card for card in response.json()["data"]}

    def probe_logprobs(self, version: str) -> tuple[list[int], list[float]]:
        """Teacher-forced log-probs of the probe text under `version`, from the server:
        (prompt token ids, log-prob of each token after the first)."""
        response = self._post(
            "/v1/completions",
            {
                "model": version,
                "prompt": self.probe,
                "max_tokens": 1,
                "temperature": 0.0,
                "prompt_logprobs": 0,
                "return_token_ids": True,
            },
        )
        if response.status_code != 200:
            raise PolicyError(f"probing {version} on {self.url} failed: {response.text}")
        choice = response.json()["choices"][0]
        token_ids = choice.get("prompt_token_ids")
        entries = choice.get("prompt_logprobs")
        if not token_ids or not entries:
            raise PolicyError(
                f"{self.url} returned no prompt token ids or prompt logprobs; is it vLLM?"
            )
        logprobs = [
            float(entry[str(token)]["logprob"])
            for token, entry in zip(token_ids[1:], entries[1:], strict=True)
        ]
        return list(token_ids), logprobs

    # -- internals ------------------------------------------------------------------------

    def _claim_name(self) -> str:
        if self._next_number is None:
            numbers = [version_number(name) for name in self.served_models()]
            numbers += [version_number(name) for name in self.versions.loaded]
            self._next_number = max((n for n in numbers if n is not None), default=0) + 1
        name = version_name(self._next_number)
        self._next_number += 1
        return name

    def _publish(self, name: str, path: Path, *, reference_model: Any | None) -> str:
        response = self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(path)})
        if response.status_code != 200:
            raise PolicyError(
                f"the server refused adapter {path} as {name} ({response.status_code}: "
                f"{_error_message(response)}); {self.versions.current} keeps serving"
            )
        try:
            self._verify(name, path, reference_model)
        except BaseException:
            self._post("/v1/unload_lora_adapter", {"lora_name": name})
            raise
        previous = self.versions.switch(name)
        if self.server is not None:
            self.server.set_startup_adapter(name, path)
        logger.info("serving %s (from %s); previous version %s", name, path, previous)
        self.unload_idle()
        return name

    def _verify(self, name: str, path: Path, reference_model: Any | None) -> ProbeCheck | None:
        card = self.served_models().get(name)
        if card is None or Path(card.get("root") or "") != path:
            raise PolicyError(
                f"after loading, {self.url} does not list {name} from {path} (listing: {card}); "
                f"{self.versions.current} keeps serving"
            )
        if reference_model is None:
            logger.info("%s loaded; no reference model given, log-probs not verified", name)
            return None
        token_ids, served = self.probe_logprobs(name)
        expected = teacher_forced_logprobs(reference_model, token_ids)
        diffs = [abs(a - b) for a, b in zip(served, expected, strict=True)]
        check = ProbeCheck(name, len(diffs), sum(diffs) / len(diffs), max(diffs))
        if check.mean_abs_diff > self.tolerance:
            raise PolicyError(
                f"{name} does not serve the trainer's weights: probe log-probs differ by "
                f"{check.mean_abs_diff:.4f} nats per token on average (max "
                f"{check.max_abs_diff:.4f}; tolerance {self.tolerance}); "
                f"{self.versions.current} keeps serving"
            )
        logger.info(
            "%s verified: probe log-probs match the trainer's (mean |diff| %.2e, max %.2e)",
            name,
            check.mean_abs_diff,
            check.max_abs_diff,
        )
        return check

    def _post(self, route: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return httpx.post(f"{self.url}{route}", json=body, timeout=self.timeout_s)
        except httpx.HTTPError as error:
            raise PolicyError(
                f"cannot reach the vLLM server at {self.url} ({route}): {error}; "
                f"{self.versions.current} stays the current version"
            ) from error


def teacher_forced_logprobs(model: torch.nn.Module, token_ids: Sequence[int]) -> list[float]:
    """Log-prob of each token of `token_ids` after the first, under `model`, in one forward
    pass (the model's train/eval mode is restored afterwards)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        ids = torch.tensor([list(token_ids)], device=device)  # (1, T)
        with torch.no_grad():
            logits = model(input_ids=ids).logits.float()  # (1, T, vocab)
        logprobs = torch.log_softmax(logits[0, :-1], dim=-1)  # (T-1, vocab)
        return logprobs.gather(-1, ids[0, 1:, None]).squeeze(-1).tolist()
    finally:
        model.train(was_training)


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text
