"""Rollout speed of the in-process policy: episodes one at a time vs in flight together.

The in-process policy (`TransformersChatModel`) samples concurrent calls in batches and reuses
the keys/values of the prompts' common prefix. This runs the same tau2 mock episodes with 1
and with N episodes in flight and prints wall time, completion tokens per second, the batches
the sampler ran, and the prompt tokens it prefilled against the prompt tokens sent.

    .venv/bin/python benchmarks/inprocess_batching.py [--model default] [--episodes 16] [--n 8]
        [--device auto|cpu|cuda|cuda:N] [--json FILE]

Greedy decoding, so both runs produce the same tokens (the comparison is like for like). Each
run loads the policy afresh (no prefix cached from the other run) and first answers one short
unrelated prompt, so that one-time start-up work (CUDA kernels' first launch) is not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch


class EmbeddedTokens:
    """A forward hook on the input embeddings: counts the tokens the model reads."""

    def __init__(self) -> None:
        self.tokens = 0

    def __call__(self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self.tokens += inputs[0].numel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="'default' or a model folder")
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--n", type=int, default=8, help="episodes in flight in the second run")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()

    from hero_agents.adapters.envs import make_env
    from hero_agents.adapters.policy.registry import model_folder
    from hero_agents.adapters.policy.transformers_chat import TransformersChatModel
    from hero_agents.device import resolve_device, sampling_dtype
    from hero_agents.phases.rollout import cycling_slots, run_episodes

    env = make_env("tau2:mock")
    slots = cycling_slots("bench", env.task_ids("test"), args.episodes)
    folder = model_folder(args.model)
    device = resolve_device(args.device)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"model {args.model} ({folder}), tau2:mock, {args.episodes} episodes, greedy, "
        f"max {args.max_new_tokens} new tokens; torch {torch.__version__}, {device} "
        f"({sampling_dtype(device)}), {where}"
    )
    runs = []
    for concurrency in (1, args.n):
        policy = TransformersChatModel.from_pretrained(
            folder,
            device=device,
            temperature=0.0,
            max_new_tokens=args.max_new_tokens,
            max_batch=args.n,
        )
        policy.invoke("Hello")  # start-up work, not timed
        sampler = policy._sampler
        batches, calls = sampler.batches, sampler.rows
        counter = EmbeddedTokens()
        policy.model.get_input_embeddings().register_forward_hook(counter)
        started = time.perf_counter()
        result = run_episodes(env, policy, slots, max_turns=4, concurrency=concurrency)
        seconds = time.perf_counter() - started
        turns = [turn for t in result.trajectories for turn in t.turns]
        completion = sum(len(turn.tokens.completion_token_ids) for turn in turns)
        prompt = sum(len(turn.tokens.prompt_token_ids) for turn in turns)
        # Decoding feeds back every sampled token but a call's last one.
        prefilled = counter.tokens - (completion - len(turns))
        runs.append(
            {
                "in_flight": concurrency,
                "seconds": seconds,
                "completion_tokens": completion,
                "tokens_per_second": completion / seconds,
                "batches": sampler.batches - batches,
                "calls": sampler.rows - calls,
                "prefilled_tokens": prefilled,
                "prompt_tokens": prompt,
            }
        )
        print(
            f"{concurrency:>2} in flight: {seconds:6.1f} s, {completion / seconds:5.1f} completion "
            f"tokens/s, {sampler.batches - batches} batches for {sampler.rows - calls} calls, "
            f"prefilled {prefilled} of {prompt} prompt tokens"
        )
    ratio = runs[1]["tokens_per_second"] / runs[0]["tokens_per_second"]
    print(f"ratio {args.n} vs 1 in flight: {ratio:.2f}x completion tokens/s")
    if args.json:
        figures = {"model": args.model, "device": str(device), "where": where, "runs": runs}
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({**figures, "ratio": ratio}, handle, indent=2)


if __name__ == "__main__":
    main()
