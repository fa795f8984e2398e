"""A real HTTP server on loopback that speaks the OpenAI chat API from a per-test script,
and trajectories to reflect on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hero_agents.reflection.prompt import requested_turns
from hero_agents.trajectory import Trajectory, Turn


@dataclass
class Reply:
    """One scripted HTTP answer: a JSON body (dict) or raw text, after an optional delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Responder = Callable[[dict[str, Any]], Reply]


def completion(
    content: str | None,
    *,
    prompt_tokens: int = 100,
    completion_tokens: int = 20,
    finish_reason: str = "stop",
    refusal: str | None = None,
) -> Reply:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if refusal is not None:
        message["refusal"] = refusal
    return Reply(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "scripted",
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def diagnoses_json(turns: Sequence[int], *, hint: str = "Hint for turn {i}.") -> str:
    return json.dumps(
        {
            "diagnoses": [
                {
                    "turn_index": i,
                    "necessity": "unnecessary" if i % 2 else "necessary",
                    "validity": "valid",
                    "cause": "redundant lookup" if i % 2 else None,
                    "hint": hint.format(i=i),
                }
                for i in turns
            ]
        }
    )


def valid_reply(body: dict[str, Any]) -> Reply:
    """Correct diagnoses for exactly the turns the request asks about."""
    return completion(diagnoses_json(requested_turns(body["messages"])))


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status=status, body={"error": {"message": message, "type": "x"}}, headers=headers or {}
    )


class ScriptedChatServer:
    """POST /v1/chat/completions answered by `script` entries in order, then by `default`.

    Each entry is a `Reply` or a function of the request body returning one. Every request
    body received is kept in `requests`.
    """

    def __init__(
        self, script: Sequence[Reply | Responder] = (), default: Responder = valid_reply
    ) -> None:
        self.script = list(script)
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    entry = server.script.pop(0) if server.script else server.default
                reply = entry if isinstance(entry, Reply) else entry(body)
                time.sleep(reply.delay_s)
                data = (
                    reply.body.encode()
                    if isinstance(reply.body, str)
                    else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def user_prompts(self) -> list[str]:
        return [
            next(m["content"] for m in r["messages"] if m["role"] == "user") for r in self.requests
        ]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def tool_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def make_trajectory(
    trajectory_id: str = "t0",
    *,
    task_id: str = "task-a",
    turns: int = 3,
    reward: float = 0.0,
    error_turns: Sequence[int] = (),
    observation_text: str | None = None,
    secret: str = "",
) -> Trajectory:
    """A tau2-like episode: tool calls with results, then a final text answer."""
    system = {"role": "system", "content": f"You are a support agent. Follow the policy. {secret}"}
    user = {"role": "user", "content": f"Please cancel order #W{trajectory_id}."}
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_order",
                "description": "Look up an order by id.",
                "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            },
        }
    ]
    context: list[dict[str, Any]] = [system, user]
    built: list[Turn] = []
    for index in range(turns):
        last = index == turns - 1
        if last:
            action: dict[str, Any] = {"role": "assistant", "content": "Your order is cancelled."}
            observation: list[dict[str, Any]] = []
        else:
            call_id = f"call_{trajectory_id}_{index}"
            action = {
                "role": "assistant",
                "content": "",
                "tool_calls": [tool_call(call_id, "get_order", {"order_id": f"#W{index}"})],
            }
            failed = index in error_turns
            result = {
                "role": "tool",
                "tool_call_id": call_id,
                "name": "get_order",
                "content": observation_text
                or ("Error: order not found" if failed else f'{{"order_id": "#W{index}"}}'),
            }
            if failed:
                result["status"] = "error"
            observation = [result]
        built.append(
            Turn(
                index=index,
                messages=list(context),
                tools=tools,
                action=action,
                observation=observation,
            )
        )
        context = [*context, action, *observation]
    return Trajectory(
        id=trajectory_id,
        task_id=task_id,
        env="test",
        turns=built,
        reward=reward,
        termination="stop",
    )
