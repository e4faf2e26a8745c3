"""A fake Anthropic API behind ``httpx2.MockTransport`` (the transport package of anthropic 2.x), for the real ``anthropic`` SDK.

It answers ``POST /v1/messages`` and the Message Batches endpoints (create, retrieve, results,
cancel) with realistic payloads: a forced tool call whose ``input`` is generated from the tool's
JSON schema, ``usage`` blocks, a batch that is ``in_progress`` for ``polls_before_end`` polls and
then ``ended``, JSONL results keyed by ``custom_id``. Every request is recorded, so tests assert
on what was really sent (one batch create, the key in the ``authorization`` header, ...).

``install(monkeypatch)`` makes the official Airflow ``AnthropicHook`` build its sync and async
clients on this transport; everything above the transport (hook, connection, SDK, retries) is real.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
from anthropic_payloads import assistant_message, batch_object


@dataclass
class FakeAnthropicAPI:
    polls_before_end: int = 1
    #: where the batch ``results_url`` points (the served address when :meth:`serve_http` runs)
    base_url: str = "https://api.anthropic.com"
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- recorded traffic ----------------------------------------------------------------------
    def calls(self, method: str, path_prefix: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path.startswith(path_prefix)]

    @property
    def batch_creates(self) -> list[httpx.Request]:
        return [r for r in self.calls("POST", "/v1/messages/batches") if r.url.path == "/v1/messages/batches"]

    # -- the API ---------------------------------------------------------------------------------
    def _batch_json(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        return batch_object(
            batch_id,
            len(batch["requests"]),
            ended=batch["polls"] > self.polls_before_end,
            results_url=f"{self.base_url}/v1/messages/batches/{batch_id}/results",
        )

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            request.read()
            self.requests.append(request)
            path = request.url.path
            if request.method == "POST" and path == "/v1/messages":
                params = json.loads(request.content)
                return httpx.Response(200, json=assistant_message(params, f"{len(self.requests):04d}"))
            if request.method == "POST" and path == "/v1/messages/batches":
                body = json.loads(request.content)
                batch_id = f"msgbatch_{len(self.batches) + 1:04d}"
                self.batches[batch_id] = {"requests": body["requests"], "polls": 0}
                return httpx.Response(200, json=self._batch_json(batch_id))
            if path.startswith("/v1/messages/batches/"):
                parts = path.split("/")
                batch_id = parts[4]
                if batch_id not in self.batches:
                    return httpx.Response(
                        404,
                        json={"type": "error", "error": {"type": "not_found_error", "message": "no batch"}},
                    )
                if len(parts) == 5 and request.method == "GET":
                    self.batches[batch_id]["polls"] += 1
                    return httpx.Response(200, json=self._batch_json(batch_id))
                if parts[-1] == "results":
                    lines = [
                        json.dumps(
                            {
                                "custom_id": r["custom_id"],
                                "result": {
                                    "type": "succeeded",
                                    "message": assistant_message(r["params"], f"b{i:04d}"),
                                },
                            }
                        )
                        for i, r in enumerate(self.batches[batch_id]["requests"])
                    ]
                    return httpx.Response(
                        200, content="\n".join(lines).encode(), headers={"content-type": "application/binary"}
                    )
                if parts[-1] == "cancel":
                    return httpx.Response(200, json=self._batch_json(batch_id))
            if request.method == "GET" and path == "/v1/models":
                return httpx.Response(
                    200, json={"data": [], "has_more": False, "first_id": None, "last_id": None}
                )
            return httpx.Response(
                404, json={"type": "error", "error": {"type": "not_found_error", "message": path}}
            )

    # -- wiring ------------------------------------------------------------------------------------
    def serve_http(self) -> tuple[str, Any]:
        """Serve this fake on ``http://127.0.0.1:<free port>`` (for Airflow components running in
        other processes); returns ``(base_url, server)``, stop it with ``server.shutdown()``."""
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                request = httpx.Request(
                    self.command,
                    f"{fake.base_url}{self.path}",
                    headers=[(k, v) for k, v in self.headers.items() if k.lower() != "host"],
                    content=body,
                )
                response = fake.handler(request)
                content = response.read()
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _handle

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self.base_url, server

    def install(self, monkeypatch: Any) -> FakeAnthropicAPI:
        """Make the official ``AnthropicHook`` build clients that talk to this fake."""
        import anthropic
        from airflow.providers.anthropic.hooks import anthropic as hook_module

        transport = httpx.MockTransport(self.handler)

        def sync_client(**kwargs: Any) -> anthropic.Anthropic:
            return anthropic.Anthropic(http_client=httpx.Client(transport=transport), max_retries=0, **kwargs)

        def async_client(**kwargs: Any) -> anthropic.AsyncAnthropic:
            # A fresh httpx client per SDK client: the trigger closes its client when it is done.
            return anthropic.AsyncAnthropic(
                http_client=httpx.AsyncClient(transport=transport), max_retries=0, **kwargs
            )

        monkeypatch.setattr(hook_module, "Anthropic", sync_client)
        monkeypatch.setattr(hook_module, "AsyncAnthropic", async_client)
        return self
