"""A server child process group that cannot outlive this process.

`start_server_group` runs a command (a vLLM server) in a new session, under a small *group
leader*: this file, run as a script. The leader is the group's first process; it starts the
server in the same group and, when it is told to stop (SIGTERM, SIGINT, SIGHUP), when the server
exits, or when its parent is gone, it sends SIGTERM to the whole group, then SIGKILL after a
grace period, and exits. So the server's own children (vLLM's engine core and worker, which are
grandchildren and great-grandchildren of the leader) go down with it, whatever state the server
is in.

On Linux the leader is started with a parent-death signal (``prctl(PR_SET_PDEATHSIG)``): when
this process dies, even by SIGKILL, the leader gets SIGTERM and takes the group down. Linux sends
that signal when the *thread* that forked the child exits, not the process, so every group is
started from one long-lived thread (`PolicyServer` restarts a dead server from a watcher thread,
and a caller may start one from any thread). The leader also polls its parent id, which covers
systems without ``prctl``.

The leader imports only the standard library: it starts in tens of milliseconds.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from queue import SimpleQueue
from typing import IO

GRACE_S = 20.0
"""How long the leader waits after SIGTERM before it sends SIGKILL to the group."""

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""The signals on which the leader takes its group down."""

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, *[ctypes.c_ulong] * 4]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()
"""Looked up before any fork: the child of a threaded parent must not load or look up symbols."""


def parent_death_signal(parent: int, sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child receive `sig` when the thread of `parent` that forks
    it exits (Linux; None elsewhere).

    If `parent` is already gone when it runs (the child was re-parented between fork and
    ``prctl``), the child exits at once with code ``128 + sig``, as if it had got the signal.
    Runs between fork and exec: it only calls the preloaded ``prctl`` and ``getppid``.
    """
    prctl = _PRCTL
    if prctl is None:
        return None

    def set_signal() -> None:
        if prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            os._exit(127)
        if os.getppid() != parent:
            os._exit(128 + sig)

    return set_signal


def start_server_group(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    output: IO[bytes],
    grace_s: float = GRACE_S,
) -> subprocess.Popen[bytes]:
    """Start `command` in a new session under a group leader; returns the leader's process.

    The leader's pid is the group id; `output` takes the leader's and the server's stdout and
    stderr. The group stops on `stop_server_group`, when the server exits, and when this
    process dies.
    """
    parent = os.getpid()
    script = str(Path(__file__).resolve())
    # -P: the script's folder is not put on sys.path (the leader imports the standard library only)
    leader = [sys.executable, "-P", script, str(parent), str(grace_s), *command]

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            leader,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            preexec_fn=parent_death_signal(parent),
        )

    return _SPAWNER.run(start)


def stop_server_group(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    """SIGTERM to the group `process` leads, SIGKILL after `timeout_s`; returns once no process
    of the group is left (or 10 s after SIGKILL)."""
    group = process.pid
    signal_group(group, signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + timeout_s
    while group_members(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    if group_members(group):
        signal_group(group, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while group_members(group) and time.monotonic() < deadline:
        time.sleep(0.1)


def signal_group(group: int, sig: int) -> None:
    """Send `sig` to process group `group`, if any process of it is left."""
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


def group_members(group: int) -> list[int]:
    """Live (non-zombie) processes in process group `group` (Linux /proc; else best effort)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return []
        return [group]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) >= 3 and int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class _Spawner:
    """Forks every server group from one daemon thread that lives as long as the process, so
    no group gets its parent-death signal while this process is alive."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: SimpleQueue[
            tuple[Callable[[], subprocess.Popen[bytes]], Future[subprocess.Popen[bytes]]]
        ] = SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        """Call `start` on the spawner thread and return its process."""
        future: Future[subprocess.Popen[bytes]] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # none yet, or forked
                self._thread = threading.Thread(
                    target=self._serve, name="hero-server-spawner", daemon=True
                )
                self._thread.start()
            self._requests.put((start, future))
        try:
            return future.result()
        except BaseException:
            # Interrupted (a signal) while the group was starting: nobody will hold it.
            future.add_done_callback(_stop_abandoned)
            raise

    def _serve(self) -> None:
        while True:
            start, future = self._requests.get()
            try:
                future.set_result(start())
            except BaseException as error:
                future.set_exception(error)


def _stop_abandoned(future: Future[subprocess.Popen[bytes]]) -> None:
    if future.exception() is None:
        signal_group(future.result().pid, signal.SIGTERM)  # its leader stops the rest


_SPAWNER = _Spawner()


# -- the group leader (this file run as a script) ----------------------------------------------


def lead(parent: int, grace_s: float, command: Sequence[str]) -> int:
    """Run `command` in this process group until it exits, a stop signal comes or `parent` is
    gone; then stop the whole group. Returns the exit code for the leader."""
    group = os.getpgrp()
    stop: list[int] = []

    def request_stop(signum: int, frame: object) -> None:
        stop.append(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, request_stop)
    if stop or os.getppid() != parent:
        return 128 + signal.SIGTERM
    server = subprocess.Popen(command, preexec_fn=parent_death_signal(os.getpid()))
    code: int | None = None
    while code is None and not stop and os.getppid() == parent:
        try:
            code = server.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # our own SIGTERM to the group must not count
    if code is not None:
        reason = f"the server exited with code {code}"
    elif stop:
        reason = f"stopped by {signal.Signals(stop[0]).name}"
    else:
        reason = f"its parent process {parent} is gone"
    print(f"hero server group {group}: {reason}; stopping the group", file=sys.stderr, flush=True)
    _take_down(group, server, grace_s)
    if code is None:
        return 128 + (stop[0] if stop else signal.SIGTERM)
    return code if code >= 0 else 128 - code


def _take_down(group: int, server: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM to the group; SIGKILL to each process still in it after `grace_s` (not to this
    leader, so that it can pass the server's exit code on)."""
    me = os.getpid()
    signal_group(group, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline + 10:  # past that, only unkillable processes are left
        server.poll()  # reap the server, so it is not counted
        others = [pid for pid in group_members(group) if pid != me]
        if not others:
            return
        if time.monotonic() >= deadline:
            for pid in others:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(lead(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]))
