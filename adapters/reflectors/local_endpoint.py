"""A local OpenAI-compatible chat endpoint over any LangChain chat model, on loopback.

It lets the one LLM reflector (`OpenAIReflector`) use an in-process model, such as the policy
itself (the ``self`` reflector), through the same HTTP API it uses for vLLM or OpenAI.

Serves ``POST /v1/chat/completions`` (text only, not streamed, one choice) and
``GET /v1/models``. Requests are answered one at a time. A request's ``temperature`` and
``max_completion_tokens`` / ``max_tokens`` are applied when the model has a field of that kind
(``temperature``; ``max_new_tokens`` or ``max_tokens``), and so is ``response_format`` when the
model does constrained decoding (a ``response_format`` field, as `TransformersChatModel` has).
What it cannot honour it refuses with HTTP 400 rather than ignore: ``response_format`` for a
model without constrained decoding, ``tools``, ``stream``, ``n > 1``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, convert_to_messages

from hero_agents.errors import ReflectionError

logger = logging.getLogger(__name__)

_MAX_BODY_BYTES = 32 * 1024 * 1024
_TOKEN_FIELDS = ("max_new_tokens", "max_tokens")


class _BadRequest(Exception):
    pass


class LocalChatEndpoint:
    """Serve `model` at ``http://127.0.0.1:PORT/v1`` until `stop` (or the ``with`` block ends)."""

    def __init__(
        self, model: BaseChatModel, *, model_name: str = "local", host: str = "127.0.0.1"
    ) -> None:
        self.model = model
        self.model_name = model_name
        self.host = host
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    @property
    def url(self) -> str:
        """The API root, to use as an OpenAI client's ``base_url``."""
        if self._server is None:
            raise ReflectionError("the local endpoint is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> LocalChatEndpoint:
        """Bind an ephemeral port and serve in a daemon thread."""
        if self._server is not None:
            return self
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    data = [{"id": endpoint.model_name, "object": "model", "owned_by": "local"}]
                    self._send(HTTPStatus.OK, {"object": "list", "data": data})
                else:
                    self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}")

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._error(HTTPStatus.NOT_FOUND, f"no route {self.path}")
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                    if length > _MAX_BODY_BYTES:
                        raise _BadRequest(f"request body over {_MAX_BODY_BYTES} bytes")
                    body = json.loads(self.rfile.read(length) or b"null")
                    self._send(HTTPStatus.OK, endpoint.complete(body))
                except (_BadRequest, json.JSONDecodeError, ValueError, TypeError) as error:
                    self._error(HTTPStatus.BAD_REQUEST, str(error))
                except Exception as error:
                    logger.exception("local endpoint: the model failed")
                    self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"the model failed: {error}")

            def _error(self, status: HTTPStatus, message: str) -> None:
                kind = "invalid_request_error" if status < 500 else "server_error"
                self._send(status, {"error": {"message": message, "type": kind}})

            def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("local endpoint: " + format, *args)

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="hero-local-endpoint",
            daemon=True,
        )
        self._thread.start()
        logger.info("serving %s at %s", self.model_name, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def complete(self, body: Any) -> dict[str, Any]:
        """Answer one chat-completions request body (raises `ValueError` for a bad one)."""
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise _BadRequest("the body must be a JSON object with a 'messages' list")
        for name in ("tools", "functions"):
            if body.get(name) is not None:
                raise _BadRequest(
                    f"{name!r} is not supported by this endpoint (an in-process model without "
                    "tools); send the request without it"
                )
        response_format = body.get("response_format")
        if response_format is not None and response_format.get("type") != "text":
            if "response_format" not in type(self.model).model_fields:
                raise _BadRequest(
                    "'response_format' is not supported by this model (no constrained "
                    "decoding); send the request without it"
                )
        if body.get("stream"):
            raise _BadRequest("'stream' is not supported; send stream=false")
        if (body.get("n") or 1) != 1:
            raise _BadRequest("only n=1 is supported")
        model = self._configured(body)
        messages = convert_to_messages(body["messages"])
        with self._lock:
            reply = model.invoke(messages)
            self._counter += 1
            number = self._counter
        if not isinstance(reply, AIMessage):
            raise TypeError(f"the model returned {type(reply).__name__}, not an AIMessage")
        content = reply.content if isinstance(reply.content, str) else reply.text
        response: dict[str, Any] = {
            "id": f"chatcmpl-local-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": reply.response_metadata.get("finish_reason") or "stop",
                }
            ],
        }
        if reply.usage_metadata:
            prompt = reply.usage_metadata.get("input_tokens", 0)
            completion = reply.usage_metadata.get("output_tokens", 0)
            response["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return response

    def _configured(self, body: dict[str, Any]) -> BaseChatModel:
        """The model with the request's temperature and token limit, where it has such fields."""
        fields = type(self.model).model_fields
        update: dict[str, Any] = {}
        response_format = body.get("response_format")
        if response_format is not None and response_format.get("type") != "text":
            update["response_format"] = response_format
        if body.get("temperature") is not None and "temperature" in fields:
            update["temperature"] = float(body["temperature"])
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None:
            name = next((f for f in _TOKEN_FIELDS if f in fields), None)
            if name is not None:
                update[name] = int(limit)
        return self.model.model_copy(update=update) if update else self.model

    def __enter__(self) -> LocalChatEndpoint:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
