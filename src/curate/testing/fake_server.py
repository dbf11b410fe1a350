"""A small OpenAI-compatible server for tests and benchmarks; it is no model.

It answers ``/v1/chat/completions`` and ``/v1/completions`` deterministically (the reply depends on the
prompt and the seed), can fail a share of requests with 429 or 500 to exercise client retries, can return
the reasoning apart (``reasoning_content``) like vLLM's reasoning parsers, can wait ``latency_s`` per
request like a real generation, and reports requests and the most in flight at ``/stats``. A real vLLM
server needs a GPU, which the tests here do not have.

Two front ends share that logic: starlette on uvicorn (``backend="uvicorn"``), and a minimal keep-alive
HTTP/1.1 server on plain asyncio streams (``backend="asyncio"``, the default), which costs the server a
fraction of the CPU so that a benchmark on a small machine measures the client, not the server.

Run: ``python -m curate.testing.fake_server --port 0 --fail-rate 0.1`` (prints ``READY <base_url>``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import orjson
import xxhash

Reply = tuple[int, bytes, dict[str, str]]


@dataclass(frozen=True, slots=True)
class FakeServerConfig:
    fail_rate: float = 0.0  # share of requests answered 429 or 500 (alternating)
    latency_s: float = 0.0  # simulated generation time per request
    reasoning: bool = False  # return the reasoning apart, as reasoning_content
    seed: int = 0  # drives which requests fail


class FakeOpenAI:
    """The server logic, independent of the HTTP front end."""

    def __init__(self, cfg: FakeServerConfig = FakeServerConfig()) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.requests = self.ok = self.failed = self.in_flight = self.max_in_flight = 0

    async def handle(self, method: str, path: str, body: bytes) -> Reply:
        if method == "GET" and path == "/stats":
            keys = ("requests", "ok", "failed", "max_in_flight")
            return 200, orjson.dumps({k: getattr(self, k) for k in keys}), {}
        if method == "GET" and path == "/v1/models":
            return 200, orjson.dumps({"object": "list", "data": [{"id": "fake", "object": "model"}]}), {}
        if method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
            return await self._complete(body)
        return 404, orjson.dumps({"error": {"message": f"no route {method} {path}"}}), {}

    async def _complete(self, raw: bytes) -> Reply:
        self.requests += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = orjson.loads(raw)
            if self.cfg.latency_s:
                await asyncio.sleep(self.cfg.latency_s)
            if self.cfg.fail_rate and self.rng.random() < self.cfg.fail_rate:
                self.failed += 1
                code = 429 if self.failed % 2 else 500
                err = orjson.dumps({"error": {"message": "simulated", "code": code}})
                return code, err, {"Retry-After": "0"} if code == 429 else {}
            self.ok += 1
            return 200, orjson.dumps(self._completion(body)), {}
        finally:
            self.in_flight -= 1

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        chat = "messages" in body
        prompt = orjson.dumps(body["messages"]).decode() if chat else str(body.get("prompt", ""))
        n, max_tokens, seed = int(body.get("n", 1)), int(body.get("max_tokens", 16)), body.get("seed")
        choices, total = [], 0
        for i in range(n):
            # vLLM fans n out into children seeded seed + i: do the same so split_n and n>1 agree.
            h = xxhash.xxh3_64_hexdigest(f"{prompt}\x1f{None if seed is None else seed + i}".encode())
            reasoning = f"Let me think about it ({h[:8]}). Step one, step two."
            answer = f" The answer is {int(h[:4], 16) % 100}."
            k = len(reasoning.split()) + len(answer.split()) + 2
            finish = "stop" if k <= max_tokens else "length"
            total += min(k, max_tokens)
            if chat and self.cfg.reasoning:
                msg = {"role": "assistant", "content": answer, "reasoning_content": reasoning}
                choices.append({"index": i, "message": msg, "finish_reason": finish})
            elif chat:
                msg = {"role": "assistant", "content": f"{reasoning}</think>{answer}"}
                choices.append({"index": i, "message": msg, "finish_reason": finish})
            else:
                text = f"<think>{reasoning}</think>{answer}"
                choices.append({"index": i, "text": text, "finish_reason": finish})
        n_in = len(prompt.split())
        return {
            "id": f"cmpl-{self.requests}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "choices": choices,
            "usage": {"prompt_tokens": n_in, "completion_tokens": total, "total_tokens": total + n_in},
        }


# ---- front end 1: starlette on uvicorn ----------------------------------------------------------------


def make_app(cfg: FakeServerConfig = FakeServerConfig()) -> Any:
    """A starlette app serving :class:`FakeOpenAI` (for uvicorn or any ASGI server)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    core = FakeOpenAI(cfg)

    async def endpoint(request: Request) -> Response:
        status, body, headers = await core.handle(request.method, request.url.path, await request.body())
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    paths = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/stats")
    return Starlette(routes=[Route(p, endpoint, methods=["GET", "POST"]) for p in paths])


# ---- front end 2: keep-alive HTTP/1.1 on asyncio streams ----------------------------------------------

_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


async def _serve_conn(core: FakeOpenAI, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            status, out, headers = await core.handle(method, path.split("?", 1)[0], body)
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(out)}\r\n{extra}\r\n".encode()
                + out
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        writer.close()


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto says TCP; without
    # it Nagle's algorithm and delayed ACKs cap every connection at ~25 requests/s.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


async def serve(
    sock: socket.socket, cfg: FakeServerConfig, backend: str, started: threading.Event, stop: asyncio.Event
) -> None:
    """Serve on ``sock`` until ``stop`` is set; ``started`` is set once connections are accepted."""
    if backend == "uvicorn":
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(make_app(cfg), log_level="warning", access_log=False, backlog=2048))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        started.set()
        await stop.wait()
        server.should_exit = True
        await task
        return
    core = FakeOpenAI(cfg)
    srv = await asyncio.start_server(lambda r, w: _serve_conn(core, r, w), sock=sock, backlog=2048)
    started.set()
    async with srv:
        await stop.wait()


@contextmanager
def serve_in_thread(
    cfg: FakeServerConfig = FakeServerConfig(), host: str = "127.0.0.1", backend: str = "asyncio"
) -> Iterator[str]:
    """Run the server in a background thread; yields its base URL (``http://host:port/v1``)."""
    sock = _bind(host, 0)
    loop = asyncio.new_event_loop()
    started, stop = threading.Event(), asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(sock, cfg, backend, started, stop),), daemon=True
    )
    thread.start()
    if not started.wait(10):
        raise RuntimeError("fake OpenAI server did not start")
    try:
        yield f"http://{host}:{sock.getsockname()[1]}/v1"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        with suppress(Exception):
            loop.close()
        sock.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="OpenAI-compatible stand-in server (no model)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--reasoning", action="store_true")
    ap.add_argument("--backend", choices=("asyncio", "uvicorn"), default="asyncio")
    a = ap.parse_args(argv)
    sock = _bind(a.host, a.port)
    cfg = FakeServerConfig(fail_rate=a.fail_rate, latency_s=a.latency, reasoning=a.reasoning)

    async def run() -> None:
        started, stop = threading.Event(), asyncio.Event()
        task = asyncio.create_task(serve(sock, cfg, a.backend, started, stop))
        while not started.is_set():
            await asyncio.sleep(0.01)
        print(f"READY http://{a.host}:{sock.getsockname()[1]}/v1", flush=True)
        await task

    with suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
