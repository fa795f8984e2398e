"""What reflection costs: calls and tokens per trajectory, batched versus one call per turn.

Both modes run the same `OpenAIReflector` (same prompt, hindsight over the whole episode) over
HTTP on loopback, against a `LocalChatEndpoint` whose model writes valid diagnoses (a
~30-word hint and a cause per turn) and reports token counts from a real tokenizer: the prompt
through its chat template, the reply as text. Only the number of calls differs: ``batched``
asks for every turn of a trajectory in one call; ``per-turn`` asks once per turn, each call
showing the whole episode.

Trajectories: ``--traces FILE`` (e.g. recorded by ``hero rollout``), or, by default, recorded
here by hero's rollout loop on real tau2 tasks: a scripted policy replays each task's gold
actions through the real tau2 tools, with one wrong call injected (a real tau2 error), then
answers; tau2's evaluator scores the episode.

    .venv/bin/python benchmarks/reflection_cost.py [--env tau2:retail] [--tasks 20]
        [--traces FILE] [--tokenizer default|MODEL_FOLDER]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from hero_agents.adapters.reflectors import (
    LocalChatEndpoint,
    OpenAIReflector,
    OpenAIReflectorConfig,
)
from hero_agents.reflection.base import ReflectionSummary
from hero_agents.reflection.prompt import requested_turns
from hero_agents.storage import read_trajectories
from hero_agents.trajectory import Trajectory

HINT = (
    "Before changing the order, look it up with get_order_details using the order id the user "
    "gave, check its status is pending, and confirm the items and payment method with the user "
    "first."
)


class EchoDiagnosesModel(BaseChatModel):
    """Answers a reflection request with valid diagnoses for exactly the turns it asks about,
    and counts tokens with a real tokenizer."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    tokenizer: Any

    @property
    def _llm_type(self) -> str:
        return "echo-diagnoses"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        openai_messages = convert_to_openai_messages(messages)
        turns = requested_turns(openai_messages)
        reply = json.dumps(
            {
                "diagnoses": [
                    {
                        "turn_index": i,
                        "necessity": "necessary",
                        "validity": "invalid" if i % 3 == 1 else "valid",
                        "cause": "wrong order id, not found" if i % 3 == 1 else None,
                        "hint": HINT,
                    }
                    for i in turns
                ]
            }
        )
        prompt_ids = self.tokenizer.apply_chat_template(
            openai_messages, add_generation_prompt=True, tokenize=True, return_dict=False
        )
        completion = len(self.tokenizer(reply, add_special_tokens=False)["input_ids"])
        message = AIMessage(
            reply,
            usage_metadata={
                "input_tokens": len(prompt_ids),
                "output_tokens": completion,
                "total_tokens": len(prompt_ids) + completion,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def _call(name: str, arguments: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"name": name, "args": arguments, "id": call_id, "type": "tool_call"}


def _wrong(arguments: dict[str, Any]) -> dict[str, Any]:
    """The same arguments with the first id-like string replaced by one that does not exist."""
    wrong = dict(arguments)
    for key, value in arguments.items():
        if isinstance(value, str):
            wrong[key] = "#W0000000" if value.startswith("#") else f"{value}_unknown"
            break
    return wrong


def record_tau2(env_name: str, tasks: int) -> list[Trajectory]:
    """Trajectories recorded by hero's rollout loop replaying tau2 gold actions (see module)."""
    from hero_agents.adapters.envs import make_env
    from hero_agents.adapters.policy.testing import ScriptedChatModel
    from hero_agents.phases.rollout import cycling_slots, run_episodes

    env = make_env(env_name)
    recorded: list[Trajectory] = []
    for task_id in env.task_ids("all"):
        criteria = env.task(task_id).evaluation_criteria
        actions = [
            a
            for a in (criteria.actions or [])
            if getattr(a, "requestor", "assistant") == "assistant"
        ]
        if not actions:
            continue
        script = []
        for number, action in enumerate(actions):
            script.append(
                AIMessage("", tool_calls=[_call(action.name, action.arguments, f"c{number}")])
            )
            if number == 0:  # a wrong call, as agents make: a real tau2 error comes back
                script.append(
                    AIMessage("", tool_calls=[_call(action.name, _wrong(action.arguments), "cx")])
                )
        script.append(AIMessage("I have taken care of your request. Is there anything else?"))
        result = run_episodes(
            env,
            ScriptedChatModel(responses=script),
            cycling_slots("bench", [task_id], 1),
            max_turns=len(script),
        )
        recorded += result.trajectories
        if len(recorded) >= tasks:
            break
    return recorded


def load_tokenizer(spec: str) -> tuple[Any, str]:
    """The default model's tokenizer, or a model folder's; used to count tokens only."""
    from transformers import AutoTokenizer

    if spec == "default":
        from hero_agents.adapters.policy import DEFAULT_MODEL_NAME, default_model_path

        tokenizer, name = AutoTokenizer.from_pretrained(default_model_path()), DEFAULT_MODEL_NAME
    else:
        tokenizer, name = AutoTokenizer.from_pretrained(spec), spec
    tokenizer.model_max_length = 1 << 30  # counting, not running: no length warning
    return tokenizer, name


def measure(
    trajectories: list[Trajectory], endpoint: LocalChatEndpoint, mode: str
) -> ReflectionSummary:
    reflector = OpenAIReflector(
        OpenAIReflectorConfig(
            model="echo",
            base_url=endpoint.url,
            kind="openai-compatible",
            batching=mode,  # type: ignore[arg-type]
            structured_output="off",
            max_concurrency=4,
        )
    )
    summary = ReflectionSummary()
    for result in reflector.reflect(trajectories):
        summary.add(result)
    if summary.failures:
        raise SystemExit(f"{mode}: {len(summary.failures)} trajectories failed: {summary.failures}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--traces", type=Path, help="recorded trajectories (JSONL)")
    parser.add_argument("--env", default="tau2:retail", help="tau2 env to record from")
    parser.add_argument("--tasks", type=int, default=20, help="trajectories to record")
    parser.add_argument("--tokenizer", default="default", help="'default' or a model folder")
    args = parser.parse_args()

    tokenizer, tokenizer_name = load_tokenizer(args.tokenizer)
    if args.traces:
        trajectories, source = read_trajectories(args.traces), str(args.traces)
    else:
        trajectories = record_tau2(args.env, args.tasks)
        source = f"{args.env}: gold actions replayed by hero's rollout loop, 1 wrong call each"
    turns = [len(t.turns) for t in trajectories]

    rows = {}
    with LocalChatEndpoint(EchoDiagnosesModel(tokenizer=tokenizer), model_name="echo") as endpoint:
        for mode in ("batched", "per-turn"):
            rows[mode] = measure(trajectories, endpoint, mode)

    n = len(trajectories)
    print("Reflection cost, batched (one call per trajectory) vs per-turn (one call per turn)")
    print(f"  trajectories: {n} from {source}")
    print(f"  turns per trajectory: mean {statistics.mean(turns):.2f}, max {max(turns)}")
    print(
        f"  tokens: {tokenizer_name} tokenizer (prompt through its chat template); reflector: "
        "OpenAIReflector over HTTP on loopback to a LocalChatEndpoint whose model echoes "
        "valid diagnoses (~30-word hints)"
    )
    print(
        f"  machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}"
    )
    print()
    print(
        f"{'mode':<10}{'calls/traj':>12}{'prompt tok/traj':>17}{'compl tok/traj':>16}"
        f"{'total tok/traj':>16}"
    )
    per_trajectory = {}
    for mode, summary in rows.items():
        usage = summary.usage
        values = (
            usage.calls / n,
            usage.prompt_tokens / n,
            usage.completion_tokens / n,
            usage.total_tokens / n,
        )
        per_trajectory[mode] = values
        print(f"{mode:<10}{values[0]:>12.2f}{values[1]:>17.0f}{values[2]:>16.0f}{values[3]:>16.0f}")
    batched, per_turn = per_trajectory["batched"], per_trajectory["per-turn"]
    print()
    print(
        f"per-turn / batched: calls x{per_turn[0] / batched[0]:.2f}, prompt tokens "
        f"x{per_turn[1] / batched[1]:.2f}, completion tokens x{per_turn[2] / batched[2]:.2f}, "
        f"total tokens x{per_turn[3] / batched[3]:.2f}"
    )


if __name__ == "__main__":
    main()
