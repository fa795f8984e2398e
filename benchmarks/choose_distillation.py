"""Choose the loop's distillation defaults on train tasks: distill fixed diagnosed rollouts with
each candidate setting and measure what it does to the policy's reference log-likelihood.

    .venv/bin/python benchmarks/choose_distillation.py DIAGNOSED.jsonl --policy WARM_MODEL \
        [--steps 16] [--held-out 64] [--candidates NAME ...] [--json out.json]

DIAGNOSED.jsonl holds train-task rollouts with diagnoses (e.g. the first iteration of a `hero
demo` run reflected with `hero reflect -r reference`). For every candidate (note placement,
whether the action's opening tokens are distilled, loss, learning rate, teacher) it trains a
fresh LoRA adapter from the warm start for `--steps` optimizer steps (4 trajectories a step,
one constant learning rate) and prints, with the warm start's figures first:

- train: the mean log-prob per token of the reference actions of the environment's first
  `--train-tasks` train tasks (what the loop's drift guard watches): the figure to choose by;
- opening: the mean probability of the first token of those reference actions (a tool call's
  opening `<`): a note that lowers it teaches the policy to stop calling tools;
- held-out: the same log-prob on `--held-out` test tasks, for the report only (never used to
  choose).

Figures are from one run of each candidate on this machine's CPU (seeded; the data are fixed).
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES: dict[str, dict[str, Any]] = {
    "user-message": {"hindsight_note_placement": "user-message"},
    "user-message, opening kept": {
        "hindsight_note_placement": "user-message",
        "distill_action_opening": False,
    },
    "system-prompt": {"hindsight_note_placement": "system-prompt"},
    "system-prompt, opening kept": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
    },
    "system-prompt, opening kept, base teacher": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
        "teacher": "base",
    },
    "system-prompt, opening kept, topk_logits": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
        "loss": "topk_logits",
    },
    "system-prompt, opening kept, topk_logits, lr 5e-4": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
        "loss": "topk_logits",
        "learning_rate": 5e-4,
    },
    "system-prompt, opening kept, full_logits": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
        "loss": "full_logits",
    },
    "system-prompt, opening kept, full_logits, base teacher": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
        "loss": "full_logits",
        "teacher": "base",
    },
    "system-prompt, opening kept, full_logits, base teacher, lr 3e-5": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
        "loss": "full_logits",
        "teacher": "base",
        "learning_rate": 3e-5,
    },
    "user-message, opening kept, full_logits, base teacher": {
        "hindsight_note_placement": "user-message",
        "distill_action_opening": False,
        "loss": "full_logits",
        "teacher": "base",
    },
    "system-prompt, opening kept, full_logits, base teacher, disagreement": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
        "loss": "full_logits",
        "teacher": "base",
        "distill_positions": "disagreement",
    },
    "system-prompt, opening kept, full_logits, base teacher, flagged turns": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
        "loss": "full_logits",
        "teacher": "base",
        "distill_turns": "flagged",
    },
    "system-prompt, opening kept, full_logits, base teacher, seq_kd": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
        "loss": "full_logits",
        "teacher": "base",
        "seq_kd": True,
    },
    "system-prompt, opening kept, lr 5e-4": {
        "hindsight_note_placement": "system-prompt",
        "distill_action_opening": False,
        "learning_rate": 5e-4,
    },
}


def opening_probability(scorer: Any, model: Any) -> float:
    """Mean probability of the first token of the scorer's reference actions."""
    from hero_agents.scoring import action_logprobs

    rows = [(r.prompt_ids, r.completion_ids[:1]) for r in scorer.rows]
    firsts = action_logprobs(model, rows)
    return sum(math.exp(values[0]) for values in firsts) / len(firsts)


def measure(model: Any, train: Any, held_out: Any) -> dict[str, float]:
    model.eval()
    figures = {
        "train": train.score(model)["value"],
        "opening": opening_probability(train, model),
        "held_out": held_out.score(model)["value"],
    }
    model.train()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("diagnosed", type=Path)
    parser.add_argument("--policy", type=Path, required=True, help="the warm-started model")
    parser.add_argument("--env", default="tau2:mock")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--train-tasks", type=int, default=8)
    parser.add_argument("--held-out", type=int, default=64)
    parser.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hero_agents.adapters.envs import make_env
    from hero_agents.phases.distill import DistillSettings, distill, hero_config
    from hero_agents.scoring import ReferenceScorer
    from hero_agents.storage import read_trajectories

    torch.manual_seed(0)
    env = make_env(args.env)
    tokenizer = AutoTokenizer.from_pretrained(args.policy)
    train = ReferenceScorer(env, env.task_ids("train")[: args.train_tasks], tokenizer)
    held_out = ReferenceScorer(env, env.task_ids("test")[: args.held_out], tokenizer)
    data = read_trajectories(args.diagnosed)
    warm = AutoModelForCausalLM.from_pretrained(args.policy, dtype=torch.float32)
    results = {"warm start": measure(warm, train, held_out)}
    print(
        f"{args.diagnosed}: {len(data)} trajectories, {sum(len(t.turns) for t in data)} turns; "
        f"{args.steps} steps of 4 trajectories; train {train.tasks} tasks ({len(train.rows)} "
        f"reference turns), held-out {held_out.tasks} tasks; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"{'setting':<76}{'train':>9}{'opening':>9}{'held-out':>10}{'seconds':>9}")

    def show(name: str, figures: dict[str, float]) -> None:
        print(
            f"{name:<76}{figures['train']:>9.4f}{figures['opening']:>9.3f}"
            f"{figures['held_out']:>10.4f}{figures.get('seconds', 0):>9.0f}",
            flush=True,
        )

    show("warm start", results["warm start"])
    for name in args.candidates:
        options = dict(CANDIDATES[name])
        settings = DistillSettings(
            signal="hero",
            loss=options.pop("loss", "sampled_token"),
            teacher=options.pop("teacher", "live"),
            learning_rate=options.pop("learning_rate", 1e-4),
            max_steps=args.steps,
            accumulation=4,
            options={"lr_scheduler_type": "constant", **options},
        )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            config = hero_config(settings, output_dir=Path(scratch) / "trainer")
            result = distill(str(args.policy), data, config, Path(scratch) / "adapter")
            figures = measure(result.trainer.model, train, held_out)
        figures["seconds"] = time.perf_counter() - started
        results[name] = figures
        show(name, figures)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
