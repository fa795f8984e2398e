"""Wall-time ratio of a LangGraph run with and without the TraceRecorder.

Runs the tool agent of `hero_agents.graphs` with a scripted stand-in chat model (so time spent
is graph and callback plumbing, plus an optional simulated model latency) and prints the median
over interleaved repeats of: no callbacks, a do-nothing callback handler (the cost LangChain's
callback machinery adds by itself), and the recorder. Target: ratio under 1.02.

    .venv/bin/python benchmarks/recorder_overhead.py [--turns 8] [--episodes 50] [--latency-ms 1]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from hero_agents.adapters.policy.testing import ScriptedChatModel
from hero_agents.capture import TraceRecorder
from hero_agents.graphs import build_tool_agent


@tool
def lookup(key: str) -> str:
    """Return a value for a key."""
    return f"value of {key} " * 20


class SlowScripted(ScriptedChatModel):
    latency_s: float = 0.0

    def _generate(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.latency_s:
            time.sleep(self.latency_s)
        return super()._generate(*args, **kwargs)


def episode_script(turns: int) -> list[AIMessage]:
    calls = [
        AIMessage("", tool_calls=[{"name": "lookup", "args": {"key": f"k{i}"}, "id": f"c{i}"}])
        for i in range(turns - 1)
    ]
    return [*calls, AIMessage("done")]


class NullHandler(BaseCallbackHandler):
    """Does nothing: measures what LangChain's callback machinery costs by itself."""

    run_inline = True


HANDLERS: dict[str, Callable[[], list[BaseCallbackHandler]]] = {
    "none": list,
    "null_handler": lambda: [NullHandler()],
    "recorder": lambda: [TraceRecorder()],
}


def run(episodes: int, turns: int, latency_s: float, handler: str) -> float:
    started = time.perf_counter()
    for _ in range(episodes):
        model = SlowScripted(responses=episode_script(turns), latency_s=latency_s)
        graph = build_tool_agent(
            model, [lookup], system_prompt="You look things up.", max_turns=turns
        )
        config = {"callbacks": HANDLERS[handler]()}
        graph.invoke({"messages": [HumanMessage("look up everything")]}, config=config)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 5.0, 20.0])
    args = parser.parse_args()

    print(
        f"# recorder overhead: {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}, {args.episodes} episodes x {args.turns} turns, "
        f"median of {args.repeats} interleaved repeats"
    )
    print("latency_ms_per_call  none_s  null_handler_s  recorder_s  ratio  ratio_vs_null_handler")
    for latency_ms in args.latency_ms:
        run(2, args.turns, 0.0, "recorder")  # warm-up
        times: dict[str, list[float]] = {name: [] for name in HANDLERS}
        for _ in range(args.repeats):
            for name in HANDLERS:
                times[name].append(run(args.episodes, args.turns, latency_ms / 1000, name))
        none, null, recorder = (statistics.median(times[name]) for name in HANDLERS)
        print(
            f"{latency_ms:19.1f}  {none:6.3f}  {null:14.3f}  {recorder:10.3f}  "
            f"{recorder / none:5.3f}  {recorder / null:21.3f}"
        )


if __name__ == "__main__":
    main()
