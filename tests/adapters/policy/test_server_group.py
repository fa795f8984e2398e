"""A server's process group never outlives the process that started it: real processes (small
Python scripts standing in for vLLM's API server, engine core and worker), no server needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hero_agents.adapters.policy.server_group import (
    group_members,
    parent_death_signal,
    start_server_group,
    stop_server_group,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux-only")

SERVER = textwrap.dedent(
    """
    # A stand-in server: a child that starts a grandchild which ignores SIGTERM (as a process
    # busy in start-up may), all in the leader's group.
    import signal, subprocess, sys, time
    grandchild = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    )
    child = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', %r]); "
    child += "time.sleep(600)"
    subprocess.Popen([sys.executable, "-c", child % grandchild])
    print("started", flush=True)
    time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 600)
    sys.exit(3)
    """
)


def server_command(exit_after_s: float | None = None) -> list[str]:
    extra = [] if exit_after_s is None else [str(exit_after_s)]
    return [sys.executable, "-c", SERVER, *extra]


def wait_for(condition, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def groups():
    """Process groups a test started; whatever is left of them is killed afterwards."""
    started: list[int] = []
    yield started
    for group in started:
        if group_members(group):
            os.killpg(group, signal.SIGKILL)


def test_group_outlives_the_thread_that_started_it(tmp_path: Path, groups: list[int]):
    log = (tmp_path / "log").open("wb")
    box: list[subprocess.Popen[bytes]] = []
    thread = threading.Thread(
        target=lambda: box.append(
            start_server_group(server_command(), env=os.environ, output=log, grace_s=1.0)
        )
    )
    thread.start()
    thread.join()  # the starting thread is gone: its parent-death signal must not fire
    leader = box[0]
    groups.append(leader.pid)
    assert wait_for(lambda: len(group_members(leader.pid)) == 4, 20)  # leader + 3 levels
    time.sleep(1.0)
    assert leader.poll() is None and len(group_members(leader.pid)) == 4

    started = time.monotonic()
    stop_server_group(leader, timeout_s=10)
    assert group_members(leader.pid) == []
    assert time.monotonic() - started < 10  # the leader escalated to SIGKILL after its grace


def test_sigkill_of_the_parent_takes_the_whole_group_down(tmp_path: Path, groups: list[int]):
    # The parent is a Python process that starts a group, prints the leader's pid and waits.
    parent_script = textwrap.dedent(
        f"""
        import os, sys, time
        from hero_agents.adapters.policy.server_group import start_server_group
        with open({str(tmp_path / "log")!r}, "wb") as log:
            leader = start_server_group({server_command()!r}, env=os.environ, output=log,
                                        grace_s=1.0)
        print(leader.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_script], stdout=subprocess.PIPE)
    try:
        group = int(parent.stdout.readline())
        groups.append(group)
        assert wait_for(lambda: len(group_members(group)) == 4, 20)
    finally:
        parent.kill()
        parent.wait()
    assert wait_for(lambda: group_members(group) == [], 10), group_members(group)
    # Nothing but the parent-death signal sent SIGTERM (the leader's poll of its parent id is
    # the slower fallback, which would say "its parent process ... is gone").
    assert "stopped by SIGTERM" in (tmp_path / "log").read_text()


def test_server_exit_stops_its_children_and_is_passed_on(tmp_path: Path, groups: list[int]):
    log = (tmp_path / "log").open("wb")
    leader = start_server_group(
        server_command(exit_after_s=1), env=os.environ, output=log, grace_s=1.0
    )
    groups.append(leader.pid)
    assert leader.wait(timeout=20) == 3  # the server's exit code, after its children are gone
    assert group_members(leader.pid) == []
    assert "the server exited with code 3" in (tmp_path / "log").read_text()


def test_child_whose_parent_died_before_prctl_exits_at_once():
    not_my_parent = os.getppid()  # as if this process had died before the child's prctl ran
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        preexec_fn=parent_death_signal(not_my_parent),
        timeout=20,
    )
    assert result.returncode == 128 + signal.SIGTERM
    assert time.monotonic() - started < 5
