"""Packed versus per-turn student scoring on 8-turn tool conversations.

The HERO trainer scores every turn of an append-only trajectory in one forward pass over the
whole conversation (`pack_turns=True`) instead of one row per turn (`pack_turns=False`). This
prints, for the same trajectories and model, the tokens each layout feeds the model, the wall
time of a no-grad scoring pass (the teacher's kind of pass) and of a forward+backward pass (the
student's, LoRA attached as in training), and the largest difference between the two layouts'
action log-probs. Each row is its own unpadded forward, as in a single-process trainer; the
forward+backward pass runs one backward per row so that per-turn rows of the default model fit
in memory (the trainer keeps all rows' graphs until one backward: more memory, same compute).

    .venv/bin/python benchmarks/distill_packing.py [--model default|tiny|PATH]
        [--trajectories 1] [--turns 8] [--repeats 3] [--threads N]

Measured: median wall time of `--repeats` runs after one warm-up, the four measurements
interleaved so that other processes' load falls on all alike, on CPU, fp32, torch's
default thread count unless `--threads`. Trajectories are synthetic, seeded and tau2-like: a
~250-word policy, three tool schemas, then per turn a tool call and a JSON tool result, and a
final text answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from hero_agents.distill import action_logits, build_examples, student_sequences
from hero_agents.distill.loss_utils import selective_log_softmax
from hero_agents.trajectory import Diagnosis, Trajectory, Turn

POLICY = (
    "You are a customer service agent for an online store. Follow the policy: verify the "
    "user's identity by email or name and zip code before any change; look up orders with "
    "find_order; only pending orders can be cancelled or modified; refunds go to the original "
    "payment method; never invent information; one tool call at a time; if a request is out "
    "of scope, transfer to a human agent. "
) * 3
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {arg: {"type": "string", "description": f"The {arg}."}},
                "required": [arg],
            },
        },
    }
    for name, description, arg in [
        ("find_user", "Find a user by email.", "email"),
        ("find_order", "Get an order's details and status.", "order_id"),
        ("cancel_order", "Cancel a pending order.", "order_id"),
    ]
]


def conversation(index: int, turns: int, rng: random.Random) -> Trajectory:
    """An append-only episode: `turns - 1` tool calls with JSON results, then a text answer."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": POLICY},
        {"role": "user", "content": f"Hi, I'm user{index}@example.com. Where are my orders?"},
    ]
    recorded = []
    for t in range(turns):
        if t == turns - 1:
            action: dict[str, Any] = {"role": "assistant", "content": "All orders are shipped."}
            observation: list[dict[str, Any]] = []
        else:
            call_id = f"call_{index}_{t}"
            order = f"#W{rng.randint(1000000, 9999999)}"
            arguments = json.dumps({"order_id": order})
            action = {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": "find_order", "arguments": arguments},
                    }
                ],
            }
            items = [
                {
                    "name": rng.choice(["lamp", "desk", "chair", "kettle"]),
                    "price": rng.randint(5, 500),
                }
                for _ in range(3)
            ]
            result = {"order_id": order, "status": "shipped", "items": items}
            observation = [{"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)}]
        recorded.append(
            Turn(
                index=t,
                messages=list(messages),
                tools=TOOLS,
                action=action,
                observation=observation,
            )
        )
        messages = [*messages, action, *observation]
    diagnoses = [
        Diagnosis(
            turn_index=t,
            necessity="necessary",
            validity="valid",
            hint="Look up each order once, then answer.",
            reflector="bench",
        )
        for t in range(turns)
    ]
    return Trajectory(id=f"bench-{index}", task_id="t", turns=recorded, diagnoses=diagnoses)


def resolve(model: str) -> str:
    if model == "default":
        from hero_agents.adapters.policy.default_model import default_model_path

        return str(default_model_path())
    if model == "tiny":
        from hero_agents.adapters.policy.testing import build_tiny_model

        return str(build_tiny_model(tempfile.mkdtemp(prefix="hero-bench-tiny-")))
    return model


def interleaved_medians(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median wall time of each run, the runs interleaved (a, b, a, b...) after one warm-up
    each, so that load from other processes falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default", help="default, tiny or a model folder")
    parser.add_argument("--trajectories", type=int, default=1)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    options = parser.parse_args()
    if options.threads:
        torch.set_num_threads(options.threads)
    torch.manual_seed(0)

    path = resolve(options.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"))
    rng = random.Random(0)
    trajectories = [conversation(i, options.turns, rng) for i in range(options.trajectories)]
    examples = build_examples(trajectories, tokenizer, signal="hero")
    completion_ids = torch.tensor(
        [t for e in examples for turn in e.turns for t in turn.completion_ids]
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    print(
        f"model {options.model} ({path}), {options.trajectories} trajectories x "
        f"{options.turns} turns, {completion_ids.numel()} action tokens; CPU "
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f}; median of {options.repeats} interleaved runs "
        "after a warm-up"
    )
    layouts: dict[str, dict[str, Any]] = {}
    runs: dict[str, Callable[[], Any]] = {}
    for name, pack in (("packed", True), ("per turn", False)):
        rows = [row for e in examples for row in student_sequences(e, pack=pack)]
        real = sum(len(row.input_ids) for row in rows)
        padded = len(rows) * max(len(row.input_ids) for row in rows)

        def score(rows: list[Any] = rows) -> torch.Tensor:
            with torch.no_grad():
                logits = action_logits(model, rows, pad_token_id=pad)  # one forward per row
                return selective_log_softmax(logits, completion_ids)

        def train_pass(rows: list[Any] = rows) -> None:
            model.zero_grad(set_to_none=True)
            for row in rows:  # backward row by row: same compute, one row's activations held
                logits = action_logits(model, [row], pad_token_id=pad)
                ids = torch.tensor([row.input_ids[p + 1] for p in row.logit_positions()])
                selective_log_softmax(logits, ids).sum().backward()

        layouts[name] = {"rows": len(rows), "tokens": real, "padded": padded, "logps": score()}
        runs[f"{name}/score"], runs[f"{name}/train"] = score, train_pass
    medians = interleaved_medians(runs, options.repeats)
    for name, layout in layouts.items():
        layout["score_s"], layout["train_s"] = medians[f"{name}/score"], medians[f"{name}/train"]

    header = f"{'layout':<10}{'rows':>6}{'tokens':>9}{'padded*':>9}{'score s':>10}{'fwd+bwd s':>11}"
    print(header)
    for name, row in layouts.items():
        print(
            f"{name:<10}{row['rows']:>6}{row['tokens']:>9}{row['padded']:>9}"
            f"{row['score_s']:>10.3f}{row['train_s']:>11.3f}"
        )
    print("* tokens of one left-padded forward over all rows (the DDP/FSDP/DeepSpeed layout)")
    packed, per_turn = layouts["packed"], layouts["per turn"]
    print(
        f"per turn / packed: {per_turn['tokens'] / packed['tokens']:.2f}x tokens, "
        f"{per_turn['score_s'] / packed['score_s']:.2f}x scoring time, "
        f"{per_turn['train_s'] / packed['train_s']:.2f}x fwd+bwd time; "
        f"max |logprob difference| {(packed['logps'] - per_turn['logps']).abs().max().item():.2e}"
    )


if __name__ == "__main__":
    main()
