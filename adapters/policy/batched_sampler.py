"""Batched sampling for an in-process causal LM: many concurrent callers, one model.

Concurrent episodes each ask the policy for one completion at a time. On a CPU a decoding step
costs about the same for 1 or 8 sequences (it is bound by reading the weights), so
`BatchedSampler` collects the requests that are waiting, samples them together, and hands each
caller its own tokens. Two more savings make it fast where prompts are long and alike:

- **prefix caching**: the prompts of one environment share a long prefix (system prompt, policy,
  tool schemas), and an episode's next prompt extends its last one. The keys and values of each
  batch's common prefix are kept in a small LRU store; a later prompt reuses the longest start
  it shares with any stored prefix, and only the rest is prefilled.
- **dropping finished rows**: a row that has stopped leaves the batch (and its cache).

Each request keeps its own sampling parameters, random generator and, for structured output,
its grammar (`TokenConstraint`); log-probabilities are the raw model's (log-softmax of the
unprocessed logits), as vLLM reports them. Batching pads the
part of each prompt after the common prefix on the left, with an attention mask, so results
match unbatched sampling up to floating-point rounding.

Every tensor lives on the model's device (CPU or GPU); a decoding step copies only the sampled
tokens and their log-probabilities to the host (the stop checks and grammars need them there).

Weights change only through `update`, which waits for the running batch, applies the change,
drops the prefix store (cached keys/values belong to the old weights) and sets the version that
later samples report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import (
    DynamicCache,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from hero_agents.adapters.policy.structured_output import TokenConstraint

logger = logging.getLogger(__name__)

MIN_CACHED_PREFIX = 32
"""Common prefixes shorter than this (tokens) are not worth a store entry."""

KVTensors = tuple[tuple[torch.Tensor, torch.Tensor], ...]
"""Per layer (keys, values), each ``(1, kv_heads, prefix_len, head_dim)``."""


@dataclass(frozen=True)
class SamplingParams:
    """How one completion is sampled."""

    temperature: float = 1.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    top_k: int | None = None
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()
    """Strings that end the completion (checked on the decoded text)."""
    grammar: str | None = None
    """An llguidance grammar the completion must follow (`structured_output.grammar_for`)."""


@dataclass(frozen=True)
class Sample:
    """One sampled completion."""

    token_ids: list[int]
    logprobs: list[float]
    """Raw log-probability of each sampled token."""
    finish_reason: str
    """'stop' (end-of-turn token or stop string) or 'length'."""
    policy_version: str
    """The weights' version the tokens were sampled with."""


@dataclass
class _Request:
    prompt_ids: list[int]
    params: SamplingParams
    generator: torch.Generator
    constraint: TokenConstraint | None = None
    future: Future[Sample] = field(default_factory=Future)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str | None = None


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by every sequence."""
    first = sequences[0]
    length = min(len(s) for s in sequences)
    for other in sequences[1:]:
        n = 0
        while n < length and other[n] == first[n]:
            n += 1
        length = n
    return length


class BatchedSampler:
    """Samples completions for concurrent callers in batches on one causal LM (see module doc).

    `sample` blocks its caller until its completion is ready; a daemon thread runs the batches.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        stop_ids: frozenset[int],
        pad_id: int,
        max_batch: int = 8,
        gather_s: float = 0.02,
        prefix_entries: int = 8,
        policy_version: str = "base",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.model = model
        self.tokenizer = tokenizer
        self.stop_ids = stop_ids
        self.pad_id = pad_id
        self.max_batch = max_batch
        self.gather_s = gather_s
        self.prefix_entries = prefix_entries
        self._version = policy_version
        self._pending: list[_Request] = []
        self._wake = threading.Condition()
        self._model_lock = threading.Lock()
        self._prefixes: OrderedDict[tuple[int, ...], KVTensors] = OrderedDict()
        self._worker: threading.Thread | None = None
        self.batches = 0
        """Batches run so far (for tests and benchmarks)."""
        self.rows = 0
        """Completions sampled so far."""

    @property
    def policy_version(self) -> str:
        return self._version

    # ---- callers

    def sample(
        self, prompt_ids: list[int], params: SamplingParams, generator: torch.Generator
    ) -> Sample:
        """Sample one completion of `prompt_ids` (blocks until it is done)."""
        if not prompt_ids:
            raise ValueError("the prompt is empty")
        constraint = None
        if params.grammar is not None:
            vocab = self.model.get_output_embeddings().weight.shape[0]
            constraint = TokenConstraint(params.grammar, self.tokenizer, vocab)
        request = _Request(list(prompt_ids), params, generator, constraint)
        with self._wake:
            self._start_worker()
            self._pending.append(request)
            self._wake.notify_all()
        return request.future.result()

    def update(self, apply: Callable[[Any], None], *, version: str) -> None:
        """Change the weights: ``apply(model)`` runs between batches; later samples report
        `version`. Cached prefixes are dropped."""
        with self._model_lock:
            apply(self.model)
            self._prefixes.clear()
            self._version = version

    # ---- the worker

    def _start_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(
                target=self._serve, name="hero-batched-sampler", daemon=True
            )
            self._worker.start()

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                # Give the other callers of this moment a chance to join the batch.
                deadline = time.monotonic() + self.gather_s
                while len(self._pending) < self.max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
            try:
                with self._model_lock:
                    self._run(batch)
                    version = self._version
            except BaseException as error:  # every waiting caller gets the error
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            for request in batch:
                request.future.set_result(
                    Sample(
                        request.token_ids,
                        request.logprobs,
                        request.finish_reason or "length",
                        version,
                    )
                )

    # ---- one batch

    @torch.inference_mode()
    def _run(self, batch: list[_Request]) -> None:
        model = self.model
        was_training = model.training
        model.eval()
        try:
            self._decode(batch)
        finally:
            model.train(was_training)
        self.batches += 1
        self.rows += len(batch)

    def _decode(self, batch: list[_Request]) -> None:
        device = self.model.device
        prompts = [request.prompt_ids for request in batch]
        # Keep at least the last prompt token out of the prefix: its logits start the completion.
        shared = min(common_prefix_length(prompts), min(len(p) for p in prompts) - 1)
        cache = self._prefix_cache(prompts[0][:shared], rows=len(batch))
        suffixes = [p[shared:] for p in prompts]
        width = max(len(s) for s in suffixes)
        rows = len(batch)
        # Built on the host from Python lists, then copied once.
        input_ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((rows, shared + width), dtype=torch.long)
        mask[:, :shared] = 1
        positions = torch.zeros((rows, width), dtype=torch.long)
        for row, suffix in enumerate(suffixes):
            pad = width - len(suffix)
            input_ids[row, pad:] = torch.tensor(suffix)
            mask[row, shared + pad :] = 1
            positions[row, pad:] = torch.arange(shared, shared + len(suffix))
        mask = mask.to(device)  # (rows, shared + width), grows by one column a step
        next_positions = torch.tensor([len(p) for p in prompts], device=device)  # (rows,)
        alive = list(range(rows))
        out = self.model(
            input_ids=input_ids.to(device),
            attention_mask=mask,
            position_ids=positions.to(device),
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        while True:
            cache = out.past_key_values
            logits = out.logits[:, -1, :].float()  # (alive, vocab)
            tokens = self._choose([batch[r] for r in alive], logits)  # (alive,)
            keep = [i for i, r in enumerate(alive) if batch[r].finish_reason is None]
            if not keep:
                return
            if len(keep) < len(alive):
                index = torch.tensor(keep, device=device)
                cache.batch_select_indices(index)
                mask, next_positions, tokens = mask[index], next_positions[index], tokens[index]
                alive = [alive[i] for i in keep]
            mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
            out = self.model(
                input_ids=tokens[:, None],
                attention_mask=mask,
                position_ids=next_positions[:, None],
                past_key_values=cache,
                use_cache=True,
            )
            next_positions = next_positions + 1

    def _choose(self, requests: list[_Request], logits: torch.Tensor) -> torch.Tensor:
        """Pick each request's next token from its row of `logits` ``(rows, vocab)`` and record
        it; returns the tokens ``(rows,)``, still on the logits' device."""
        raw = torch.log_softmax(logits, dim=-1)  # (rows, vocab)
        picked = []
        for request, row in zip(requests, logits, strict=True):
            params = request.params
            if request.constraint is not None:
                row = request.constraint.mask(row)
            if params.temperature == 0:
                picked.append(row.argmax())
                continue
            warpers = LogitsProcessorList([TemperatureLogitsWarper(params.temperature)])
            if params.top_k is not None:
                warpers.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                warpers.append(TopPLogitsWarper(params.top_p))
            probs = torch.softmax(warpers(None, row[None, :]), dim=-1)  # (1, vocab)
            picked.append(torch.multinomial(probs, 1, generator=request.generator)[0, 0])
        tokens = torch.stack(picked)  # (rows,)
        logprobs = raw.gather(1, tokens[:, None])[:, 0]  # (rows,)
        # The one copy to the host of a step: the stop checks and grammars read the tokens.
        for request, token, logprob in zip(
            requests, tokens.tolist(), logprobs.tolist(), strict=True
        ):
            self._record(request, token, logprob)
        return tokens

    def _record(self, request: _Request, token: int, logprob: float) -> None:
        """Append `token` to the request's completion and decide whether it is finished."""
        params = request.params
        request.token_ids.append(token)
        request.logprobs.append(logprob)
        if request.constraint is not None and token not in self.stop_ids:
            request.constraint.accept(token)
        if token in self.stop_ids:
            request.finish_reason = "stop"
        elif params.stop and any(
            s in self.tokenizer.decode(request.token_ids) for s in params.stop
        ):
            request.finish_reason = "stop"
        elif len(request.token_ids) >= params.max_new_tokens:
            request.finish_reason = "length"

    def _prefix_cache(self, prefix: list[int], *, rows: int) -> DynamicCache:
        """A cache holding `prefix`'s keys/values for `rows` rows.

        Keys and values of a position depend only on the tokens up to it, so any stored prefix
        that shares a start with `prefix` gives that start for free; only the rest is computed.
        """
        if not prefix:
            return DynamicCache()
        key = tuple(prefix)
        reused, base = 0, None
        for candidate, tensors in self._prefixes.items():
            shared = common_prefix_length([candidate, key])
            if shared > reused:
                reused, base = shared, tensors
        if base is not None:
            base = tuple((k[:, :, :reused], v[:, :, :reused]) for k, v in base)
        if reused < len(prefix):
            device = self.model.device
            cache = DynamicCache(ddp_cache_data=base) if base is not None else DynamicCache()
            # The decoder alone: a prefix needs keys and values, not logits.
            out = self.model.get_decoder()(
                input_ids=torch.tensor([prefix[reused:]], device=device),
                position_ids=torch.arange(reused, len(prefix), device=device)[None, :],
                past_key_values=cache,
                use_cache=True,
            )
            base = tuple((keys, values) for keys, values, _ in out.past_key_values)
        assert base is not None
        if key in self._prefixes:
            self._prefixes.move_to_end(key)
        elif len(prefix) >= MIN_CACHED_PREFIX:
            self._prefixes[key] = base
            while len(self._prefixes) > self.prefix_entries:
                self._prefixes.popitem(last=False)
        # Layers grow by concatenation (new tensors), so the stored ones are never written to.
        cache = DynamicCache(ddp_cache_data=base)
        if rows > 1:
            cache.batch_repeat_interleave(rows)
        return cache
