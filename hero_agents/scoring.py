"""How likely a policy finds given actions: per-token log-probabilities by forward passes.

`action_logprobs` scores completions after their prompts in left-padded batches;
`greedy_continuations` decodes a policy's greedy continuations of prompts the same way.
`ReferenceScorer` turns it into a low-variance learning curve: the mean log-probability per
token of the environment's reference actions (its demonstrations' turns, in their own contexts)
on a fixed set of tasks. On held-out tasks it measures learning without the noise of episode
success; on a few train tasks it guards a run against drift (`hero_agents.loop.runner`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hero_agents.environment import DemonstrationSource, Environment
from hero_agents.errors import ConfigError
from hero_agents.stats import mean_interval


def supports_logits_to_keep(model: Any) -> bool:
    """Whether the model's forward (under a PEFT wrapper, its base model's) can compute logits
    for the last positions only."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def action_logprobs(
    model: Any, rows: Sequence[tuple[list[int], list[int]]], *, batch_size: int = 8
) -> list[list[float]]:
    """Per-token log-probs of each ``(prompt_ids, completion_ids)`` row's completion.

    Rows are left-padded so that every completion ends at the last position: the model then
    computes logits for the completions' positions only (``logits_to_keep``), not for the
    whole vocabulary at every prompt position.
    """
    import torch

    device = next(model.parameters()).device
    keeps = supports_logits_to_keep(model)
    results: list[list[float]] = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(len(p) + len(c) for p, c in chunk)
        span = max(len(c) for _, c in chunk) + 1
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (prompt, completion) in enumerate(chunk):
            sequence = prompt + completion
            ids[row, width - len(sequence) :] = torch.tensor(sequence)
            mask[row, width - len(sequence) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        extra = {"logits_to_keep": span} if keeps else {}
        with torch.no_grad():
            logits = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                **extra,
            ).logits[:, -span:]  # (B, span, V): the last position predicts nothing
        for row, (_, completion) in enumerate(chunk):
            n = len(completion)
            predicting = logits[row, span - 1 - n : span - 1].float()  # (n, V)
            picked = predicting.log_softmax(-1).gather(
                1, torch.tensor(completion, device=device)[:, None]
            )
            results.append(picked[:, 0].tolist())
    return results


def greedy_continuations(
    model: Any,
    prompts: Sequence[list[int]],
    *,
    pad_token_id: int,
    max_new_tokens: int,
    eos_token_id: int | None = None,
) -> list[list[int]]:
    """The greedy continuation of each prompt (token ids), from one left-padded batch; with
    `eos_token_id` None, generation stops at the model's own end-of-sequence tokens."""
    import torch

    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    stop = {} if eos_token_id is None else {"eos_token_id": eos_token_id}
    with torch.no_grad():
        output = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad_token_id,
            **stop,
        )  # (B, width + new)
    return [row[width:].tolist() for row in output]


@dataclass(frozen=True)
class _Row:
    task_id: str
    prompt_ids: list[int]
    completion_ids: list[int]


class ReferenceScorer:
    """Mean log-prob per token of the reference actions of `task_ids` (see the module
    docstring), with a 95% interval over tasks."""

    def __init__(self, env: Environment, task_ids: Sequence[str], tokenizer: Any) -> None:
        from hero_agents.distill.examples import student_examples

        if not isinstance(env, DemonstrationSource):
            raise ConfigError(f"{env.name} has no reference demonstrations to score against")
        demos = env.demonstrations(list(task_ids)).trajectories
        self.rows = [
            _Row(example.task_id or example.trajectory_id, turn.prompt_ids, turn.completion_ids)
            for example in (student_examples(demos, tokenizer) if demos else [])
            for turn in example.turns
        ]
        self.tasks = len({row.task_id for row in self.rows})

    def score(self, model: Any) -> dict[str, Any] | None:
        """``{"value", "ci", "turns", "tasks"}`` for `model`; None without reference turns."""
        if not self.rows:
            return None
        was_training = model.training
        model.eval()
        try:
            scores = action_logprobs(model, [(r.prompt_ids, r.completion_ids) for r in self.rows])
        finally:
            model.train(was_training)
        per_task: dict[str, list[float]] = {}
        for row, values in zip(self.rows, scores, strict=True):
            per_task.setdefault(row.task_id, []).append(sum(values) / len(values))
        interval = mean_interval(per_task)
        return {
            "value": interval.value,
            "ci": [interval.low, interval.high],
            "turns": len(self.rows),
            "tasks": self.tasks,
        }
