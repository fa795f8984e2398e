"""``hero serve``: run the policy on a vLLM server until interrupted.

Registered in the ``hero`` typer app by `hero_agents.cli`.

SIGTERM, SIGINT (Ctrl-C) and SIGHUP stop the server, from the moment the command starts: during
start-up the command then exits with ``128 + signal`` and one error line; once serving, it exits
0. The server's process group also goes down if this process is killed (`start_server_group`).
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from hero_agents.cli.console import console, fail
from hero_agents.errors import HeroError

if TYPE_CHECKING:
    from hero_agents.adapters.policy.vllm_server import PolicyServer

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""The signals that stop ``hero serve`` and its server."""


class StopRequested(KeyboardInterrupt):
    """One of `STOP_SIGNALS` arrived (raised in the main thread by the signal handler)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def serve(
    model: Annotated[
        str, typer.Option(help="'default' (SmolLM2-135M-Instruct) or a model folder.")
    ] = "default",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    max_lora_rank: Annotated[
        int, typer.Option(min=1, help="Largest LoRA rank that can be hot-loaded.")
    ] = 16,
    max_model_len: Annotated[int, typer.Option(min=128, help="Context length per request.")] = 2048,
    run_dir: Annotated[Path, typer.Option(help="Where the server log goes.")] = Path("runs/serve"),
) -> None:
    """Serve the policy with vLLM (OpenAI-compatible API, runtime LoRA loading, tool calls)."""
    previous = {sig: signal.signal(sig, _request_stop) for sig in STOP_SIGNALS}
    try:
        _serve(model, port, host, max_lora_rank, max_model_len, run_dir)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(
    model: str, port: int, host: str, max_lora_rank: int, max_model_len: int, run_dir: Path
) -> None:
    from hero_agents.adapters.policy.registry import model_folder
    from hero_agents.adapters.policy.vllm_server import PolicyServer

    server: PolicyServer | None = None
    serving = False
    outcome: HeroError | StopRequested | None = None
    try:
        path = model_folder(model)
        server = PolicyServer(
            path,
            run_dir=run_dir,
            host=host,
            port=port,
            max_lora_rank=max_lora_rank,
            max_model_len=max_model_len,
        )
        # User-given strings go out as plain Text: no markup or emoji codes are read in them.
        with console.status(Text(f"starting vLLM for {path} (log: {server.log_path})")):
            server.start()
        serving = True
        name = server.served_model_name
        for line in (
            Text.assemble(("serving", "bold green"), f" {path} as ", (name, "bold")),
            Text(f"  OpenAI API: {server.base_url}"),
            Text(f"  policy spec: vllm:{server.base_url}"),
            Text(f"  log: {server.log_path}"),
            Text("  press Ctrl-C to stop"),
        ):
            console.print(line, soft_wrap=True)  # paths stay whole, to copy
        server.wait()
    except (HeroError, StopRequested) as error:
        outcome = error
    finally:
        _ignore_stop_signals()  # the stop is bounded; a second signal must not cut it short
        if server is not None:
            server.stop()
    if isinstance(outcome, HeroError):
        raise fail(outcome)
    if isinstance(outcome, StopRequested):
        if serving:
            console.print(f"stopped by {outcome.name}; the server is shut down")
            return
        console.print(
            f"[bold red]error:[/] stopped by {outcome.name} while the vLLM server was starting; "
            "nothing is left running",
            soft_wrap=True,
        )
        raise typer.Exit(code=128 + outcome.signum)
    assert server is not None  # wait() returned on its own: the server died for good
    console.print(
        Text.assemble(("error:", "bold red"), f" the vLLM server stopped; see {server.log_path}"),
        soft_wrap=True,
    )
    raise typer.Exit(code=1)


def _request_stop(signum: int, frame: FrameType | None) -> None:
    _ignore_stop_signals()  # one stop at a time
    raise StopRequested(signum)


def _ignore_stop_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
