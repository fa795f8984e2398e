"""Capture a prebuilt LangGraph ReAct agent, unchanged, as HERO training data.

    .venv/bin/python examples/capture_react_agent.py --policy default --out runs/react.jsonl

The agent is LangGraph's own `create_react_agent`; the only HERO-specific line is `wrap`.
Any chat model works as the policy; `load_policy` gives the in-process default (SmolLM2-135M),
a local model folder, or a vLLM server (`vllm:http://127.0.0.1:8000/v1`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent

import hero_agents
from hero_agents.adapters.policy import load_policy

ORDERS = {"W100": "shipped", "W200": "processing"}


@tool
def order_status(order_id: str) -> str:
    """Return the status of an order, e.g. order_status(order_id="W100")."""
    if order_id not in ORDERS:
        raise ValueError(f"no order {order_id!r}; known orders look like W100")
    return ORDERS[order_id]


def main(policy: str, out: Path, questions: list[str], max_new_tokens: int = 128) -> list:
    model = load_policy(policy, max_new_tokens=max_new_tokens, temperature=0.0)
    agent = create_react_agent(model, [order_status], prompt="You answer questions about orders.")
    agent, recorder = hero_agents.wrap(agent)  # the only HERO-specific line
    for question in questions:
        agent.invoke({"messages": [("user", question)]}, config={"recursion_limit": 12})
    hero_agents.write_trajectories(out, recorder.trajectories)
    return recorder.trajectories


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="default")
    parser.add_argument("--out", type=Path, default=Path("runs/react.jsonl"))
    args = parser.parse_args()
    trajectories = main(args.policy, args.out, ["Where is order W100?", "And order W999?"])
    for trajectory in trajectories:
        print(
            f"{trajectory.id}: {len(trajectory.turns)} turns, {trajectory.tool_errors} tool errors"
        )
    print(f"wrote {len(trajectories)} trajectories to {args.out}")
