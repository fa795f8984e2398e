"""``hero serve``: run the policy on a vLLM server until interrupted.

Registered in the ``hero`` typer app by `hero_agents.cli`.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from hero_agents.cli.console import console, fail
from hero_agents.errors import HeroError


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
    from hero_agents.adapters.policy.registry import model_folder
    from hero_agents.adapters.policy.vllm_server import PolicyServer

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
        with console.status(f"starting vLLM for {path} (log: {server.log_path})"):
            server.start()
    except HeroError as error:
        raise fail(error) from None

    console.print(f"[bold green]serving[/] {path} as [bold]{server.served_model_name}[/]")
    console.print(f"  OpenAI API: {server.base_url}")
    console.print(f"  policy spec: vllm:{server.base_url}")
    console.print(f"  log: {server.log_path}")
    console.print("  press Ctrl-C to stop")
    interrupted = False
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the server too
    try:
        server.wait()
    except KeyboardInterrupt:
        interrupted = True
        console.print("stopping the server")
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
    if not interrupted:  # it died and could not be restarted
        console.print(f"[bold red]error:[/] the vLLM server stopped; see {server.log_path}")
        raise typer.Exit(code=1)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")
