"""A small fault-injecting OpenAI-compatible server on 127.0.0.1, for the LLM layer's tests and benchmark.

It serves ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models`` with OpenAI-shaped
JSON. Faults are planned per request by the prompt itself: the last user message (or the
whole prompt for plain completions) may contain a plan such as ``[fault:429,500]``, which
answers the first arrival of that message with a 429, the second with a 500 and every later
one normally. Plan items:

``ok``         a normal answer (deterministic text derived from the request)
``429``        HTTP 429 with ``Retry-After`` (``--retry-after`` seconds, default 1)
``500``        HTTP 500
``hang``       no answer for ``--hang-s`` seconds (longer than the client's timeout), then 504
``malformed``  HTTP 200 with a truncated JSON body
``badshape``   HTTP 200 with valid JSON but no choices
``empty``      HTTP 200 with empty content
``401echo``    HTTP 401 whose message echoes the API key from the Authorization header, as OpenAI does
``500echo``    HTTP 500 that echoes the API key too
``429long``    HTTP 429 with ``Retry-After: 100000`` (28 hours)
``drip``       HTTP 200 whose body trickles in a few bytes at a time (``--drip-s`` between writes), so
               that no single read times out but the whole answer takes far longer than the deadline

Odd 200 answers (each a valid HTTP answer that is not a well-formed completion):

``list``       content (chat) or text (completions) is a list of parts
``int``        content is the number 42
``surrogate``  content holds a lone surrogate (``\ud83d`` escaped in the JSON)
``badutf8``    the body holds a byte that is not UTF-8
``nullchoice`` ``choices: [null]``
``strmessage`` ``message`` is a string
``badusage``   ``usage.prompt_tokens`` is the string "many"
``html``       an HTML page instead of JSON
``jsonlist``   a JSON list instead of an object
``echo200``    a normal answer whose text echoes the API key

Key echoes in the forms that escape a plain search:

``logprobecho`` a normal answer whose ``logprobs`` name the key as a token (a dict key, as the old
               completions format of ``top_logprobs`` does)
``escapedecho`` HTTP 200 with a truncated JSON body that echoes the key with every character
               JSON-escaped (``\\u0073\\u006b...``) and once with ``/`` as ``\\/``
``bigecho``    HTTP 200 with a body that is not JSON, 70,000 bytes long, with the key spanning byte
               65,536 (the longest raw body the client keeps)

``KIND*N`` repeats an item N times and ``KIND*inf`` forever (``[fault:empty*inf]`` never answers).
``--latency-ms`` adds a fixed delay to every request; ``--echo-key`` makes every normal answer echo
the key, as it is and JSON-escaped (a whole pipeline run whose every answer carries the key). ``GET /stats`` reports how many
requests arrived per message (``received``), how many got a normal answer (``ok``) and
when each arrived (``arrivals``, Unix seconds); ``POST /stats/reset`` clears them.

Run it with ``python tests/fault_server.py --port 8123 --latency-ms 100``; tests and
``benchmarks/bench_llm.py`` start it with ``FaultServer`` (a free port, waits until it answers,
always stopped). It is test equipment, not part of the ``valuelex`` package.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make valuelex importable
    sys.path.insert(0, str(ROOT))

from valuelex.llm.local import stop_process  # noqa: E402

ODD_ANSWERS = ("list", "int", "surrogate", "badutf8", "nullchoice", "strmessage", "badusage", "html", "jsonlist")
KINDS = (
    "ok", "429", "500", "hang", "malformed", "badshape", "empty", "401echo", "500echo", "429long", "drip", "echo200",
    "logprobecho", "escapedecho", "bigecho", *ODD_ANSWERS,
)  # fmt: skip
BIG_BODY = 70_000  # bytes of a bigecho body
CUT_AT = 65_536  # the client's raw-body limit (valuelex.llm.wire.MAX_RAW_BODY), which bigecho's key spans
_PLAN = re.compile(r"\[fault:([^\]]*)\]")
_WORDS = ("honesty", "kindness", "fairness", "curiosity", "humility", "courage", "patience", "loyalty")


def parse_plan(text: str) -> list[tuple[str, float]]:
    """The fault plan in a message: [(kind, times)], times may be ``inf``; empty if there is none."""
    match = _PLAN.search(text)
    if not match:
        return []
    plan = []
    for item in match.group(1).split(","):
        kind, _, times = item.strip().partition("*")
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r} in {match.group(0)!r} (known: {', '.join(KINDS)})")
        plan.append((kind, float(times) if times else 1.0))
    return plan


def fault_for(text: str, arrival: int) -> str:
    """What the ``arrival``-th (0-based) request carrying ``text`` gets."""
    seen = 0.0
    for kind, times in parse_plan(text):
        seen += times
        if arrival < seen:
            return kind
    return "ok"


def answer_text(model: str, text: str, body: dict[str, Any]) -> str:
    """A deterministic answer: the same request always gets the same words."""
    seed = f"{model}|{text}|{body.get('temperature')}|{body.get('top_p')}|{body.get('seed')}"
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    words = [_WORDS[b % len(_WORDS)] for b in digest[:6]]
    return f"ok-{digest.hex()[:12]}: " + ", ".join(words)


class FaultApp:
    """The server's state: per-message counters and the options from the command line."""

    def __init__(
        self,
        latency_ms: float = 0.0,
        hang_s: float = 30.0,
        retry_after: float = 1.0,
        drip_s: float = 0.2,
        echo_key: bool = False,
    ):
        self.latency_s = latency_ms / 1000.0
        self.hang_s = hang_s
        self.retry_after = retry_after
        self.drip_s = drip_s
        self.echo_key = echo_key  # every normal answer echoes the key, as is and JSON-escaped
        self.received: Counter[str] = Counter()
        self.ok: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = {}
        self.total = 0
        self.next_id = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/stats", self.stats)
        app.router.add_post("/stats/reset", self.reset)
        return app

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "fault-model", "object": "model", "created": 0, "owned_by": "valuelex"}]}
        )

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"total": self.total, "received": self.received, "ok": self.ok, "arrivals": self.arrivals}
        )

    async def reset(self, request: web.Request) -> web.Response:
        self.received.clear()
        self.ok.clear()
        self.arrivals.clear()
        self.total = 0
        return web.json_response({"reset": True})

    async def chat(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' must be a non-empty list", "invalid_request_error")
        users = [m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        return await self._answer(request, body, str(users[-1] if users else messages[-1].get("content", "")), True)

    async def completions(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if isinstance(body, web.Response):
            return body
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            return _error(400, "'prompt' must be a string", "invalid_request_error")
        return await self._answer(request, body, prompt, False)

    async def _answer(self, request: web.Request, body: dict[str, Any], text: str, chat: bool) -> web.Response:
        arrival = self.received[text]
        self.received[text] += 1
        self.total += 1
        self.arrivals.setdefault(text, []).append(time.time())
        try:
            kind = fault_for(text, arrival)
        except ValueError as exc:
            return _error(400, str(exc), "invalid_request_error")
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if kind == "429":
            return _error(
                429,
                "Rate limit reached; try again later",
                "rate_limit_exceeded",
                {"Retry-After": f"{self.retry_after:g}"},
            )
        if kind == "500":
            return _error(500, "The server had an error while processing your request", "server_error")
        if kind in ("401echo", "500echo"):
            status = int(kind[:3])
            message = f"Incorrect API key provided: {key}. You can find your API key at https://example.invalid/keys."
            return _error(status, message, "invalid_api_key")
        if kind == "429long":
            return _error(
                429, "Rate limit reached; come back tomorrow", "rate_limit_exceeded", {"Retry-After": "100000"}
            )
        if kind == "hang":
            await asyncio.sleep(self.hang_s)
            return _error(504, "hung past every sensible timeout", "timeout")
        if kind in ODD_ANSWERS:
            return _odd_answer(kind, chat)
        if kind == "malformed":
            return web.Response(
                status=200, text='{"id": "cmpl-broken", "choices": [{"index": 0, "mess', content_type="application/json"
            )
        if kind == "badshape":
            return web.json_response({"id": "cmpl-empty", "object": "chat.completion", "choices": []})
        if kind == "escapedecho":
            escaped = "".join(f"\\u{ord(c):04x}" for c in key)
            slashed = key.replace("/", "\\/")
            text = f'{{"error": {{"message": "bad key {escaped}", "key": "{slashed}", "choices": [{{"mess'
            return web.Response(status=200, text=text, content_type="application/json")
        if kind == "bigecho":
            start = CUT_AT - len(key) // 2
            body = ("x" * start + key).ljust(BIG_BODY, "y")
            return web.Response(status=200, text=body, content_type="text/plain")
        model = str(body.get("model", "fault-model"))
        content = "" if kind == "empty" else answer_text(model, text, body)
        if kind == "echo200" or (self.echo_key and kind == "ok" and content):
            escaped = "".join(f"\\u{ord(c):04x}" for c in key)
            content = f"{content} (your key is {key})" + (f" (escaped: {escaped})" if self.echo_key else "")
        words = content.split()
        max_tokens = body.get("max_tokens")
        finish = "stop"
        if isinstance(max_tokens, int) and len(words) > max_tokens:
            words, finish = words[:max_tokens], "length"
            content = " ".join(words)
        self.next_id += 1
        self.ok[text] += 1
        usage = {
            "prompt_tokens": len(text.split()),
            "completion_tokens": len(words),
            "total_tokens": len(text.split()) + len(words),
        }
        logprobs = None
        if kind == "logprobecho":
            logprobs = {"tokens": [words[0]], "top_logprobs": [{words[0]: -0.1, key: -2.5}]}
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
                "logprobs": logprobs,
            }
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": content, "finish_reason": finish, "logprobs": logprobs}
            obj = "text_completion"
        payload = {
            "id": f"fault-{self.next_id}",
            "object": obj,
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
            "usage": usage,
        }
        if kind == "drip":
            return await self._drip(request, json.dumps(payload).encode())
        return web.json_response(payload)

    async def _drip(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """Send the body a few bytes at a time: every read succeeds, the whole answer takes very long."""
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = len(body)
        await response.prepare(request)
        for i in range(0, len(body), 8):
            await response.write(body[i : i + 8])
            await asyncio.sleep(self.drip_s)
        await response.write_eof()
        return response


def _odd_answer(kind: str, chat: bool) -> web.Response:
    """A 200 answer that is not a well-formed completion (see the module docstring)."""

    def completion(value: str) -> str:
        """A completion body whose answer text is the raw JSON ``value``."""
        if chat:
            choice = f'{{"index": 0, "message": {{"role": "assistant", "content": {value}}}, "finish_reason": "stop"}}'
        else:
            choice = f'{{"index": 0, "text": {value}, "finish_reason": "stop"}}'
        return f'{{"id": "odd-{kind}", "model": "fault-model", "choices": [{choice}]}}'

    if kind == "list":
        text = completion('[{"type": "text", "text": "honesty"}]')
    elif kind == "int":
        text = completion("42")
    elif kind == "surrogate":
        text = completion('"honesty, \\ud83d"')
    elif kind == "badutf8":
        body = completion('"honesty, \xff"').encode("latin-1")  # U+00FF as the single byte 0xff
        return web.Response(status=200, body=body, content_type="application/json")
    elif kind == "nullchoice":
        text = '{"id": "odd-nullchoice", "model": "fault-model", "choices": [null]}'
    elif kind == "strmessage":
        text = '{"id": "odd-strmessage", "model": "fault-model", "choices": [{"index": 0, "message": "honesty"}]}'
    elif kind == "badusage":
        text = completion('"honesty"')[:-1] + ', "usage": {"prompt_tokens": "many", "completion_tokens": 1}}'
    elif kind == "html":
        return web.Response(status=200, text="<html><body>Gateway says hello</body></html>", content_type="text/html")
    else:  # jsonlist
        text = '[{"choices": []}]'
    return web.Response(status=200, text=text, content_type="application/json")


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "request body is not JSON", "invalid_request_error")
    if not isinstance(body, dict):
        return _error(400, "request body must be a JSON object", "invalid_request_error")
    return body


def _error(status: int, message: str, code: str, headers: dict[str, str] | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return web.json_response(payload, status=status, headers=headers)


async def serve(host: str, port: int, state: FaultApp) -> None:
    """Serve until cancelled; prints ``READY <port>`` once the socket is bound."""
    runner = web.AppRunner(state.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"READY {bound}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


class FaultServer:
    """The fault server in a subprocess on a free 127.0.0.1 port; a context manager giving the /v1 URL."""

    def __init__(
        self,
        latency_ms: float = 0.0,
        hang_s: float = 30.0,
        retry_after: float = 1.0,
        timeout_s: float = 30.0,
        drip_s: float = 0.2,
        echo_key: bool = False,
    ):
        self.args = ["--latency-ms", f"{latency_ms:g}", "--hang-s", f"{hang_s:g}", "--retry-after", f"{retry_after:g}"]
        self.args += ["--drip-s", f"{drip_s:g}"] + (["--echo-key"] if echo_key else [])
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen[str] | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> str:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=ROOT,
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]  # blocks until bound or exited
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"fault server did not start (exit code {self.proc.returncode}): {line!r}")
        self.port = int(line.split()[1])
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return self.base_url
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"fault server on port {self.port} did not answer") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_process(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/stats", timeout=10) as resp:
            return json.load(resp)

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/stats/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def __enter__(self) -> FaultServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_card(
    folder: str | Path,
    name: str,
    base_url: str,
    api_key_env: str = "VALUELEX_TEST_KEY",
    *,
    api: str = "chat",
    concurrency: int | None = None,
    price: tuple[float, float] = (1.0, 2.0),
) -> str:
    """Write ``folder/NAME.yaml``: a model card for a model behind this server; returns its path."""
    lines = [
        f"name: {name}",
        "provider: openai_compatible",
        "model: fault-model",
        f"api: {api}",
        f"base_url: {base_url}",
        f"api_key_env: {api_key_env}",
        "family: Fault",
        "params_b: null",
        "training_stage: instruct",
        f"price_per_mtok: {{input: {price[0]}, output: {price[1]}}}",
    ]
    if api == "completions":
        lines.append('prompt_template: "{system}\\n\\nQuestion: {user}\\nAnswer:"')
        lines.append('stop: ["\\nQuestion:"]')
    if concurrency:
        lines.append(f"limits: {{concurrency: {concurrency}}}")
    path = Path(folder) / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fault-injecting OpenAI-compatible test server (127.0.0.1).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port (printed as 'READY <port>')")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every request")
    parser.add_argument("--hang-s", type=float, default=30.0, help="how long a 'hang' fault waits before a 504")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds sent with a 429")
    parser.add_argument("--drip-s", type=float, default=0.2, help="pause between the pieces of a 'drip' answer")
    parser.add_argument("--echo-key", action="store_true", help="every normal answer echoes the key (as echo200)")
    args = parser.parse_args(argv)
    state = FaultApp(args.latency_ms, args.hang_s, args.retry_after, args.drip_s, args.echo_key)
    try:
        asyncio.run(serve(args.host, args.port, state))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
