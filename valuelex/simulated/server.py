"""The simulated population behind an OpenAI-compatible endpoint on 127.0.0.1.

``SimulatedServer`` starts ``python -m valuelex.simulated.server`` as a child process (as
:class:`valuelex.llm.local.LlamaServer` starts llama.cpp): a context manager, sync or async,
whose value is the ``/v1`` base URL; the server is stopped on exit, on errors and Ctrl-C, and on
Linux when its parent dies. It serves

* ``GET /v1/models``: the population's models;
* ``POST /v1/chat/completions`` and ``POST /v1/completions``: OpenAI-shaped answers, with
  ``finish_reason`` (``length`` when ``max_tokens`` cut the answer), ``usage`` and, when asked
  (``logprobs``/``top_logprobs``), log-probabilities in the API's shapes;
* errors as the API gives them: 404 for a model the population does not have (a judge request
  sent here by mistake), 400 for a malformed body or ``stream: true``. One choice per request
  (``n`` is ignored); other parameters (``response_format``, penalties) are accepted and ignored.

Each answer is a pure function of the population and the request (see ``population.py``), so
the same request gets the same answer whatever the order or concurrency. With ``answers_log``
the server appends one JSON line per answer: the request's respondent, prompt and the planted
truth behind the text (``Population.answer`` gives the same truth again from the request).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from ..core.errors import run_main
from ..llm.simulated import SimulatedProcess
from .population import Ask, Population
from .spec import DEFAULT_POPULATION


def _error(status: int, message: str, kind: str, code: str | None = None) -> Any:
    from aiohttp import web

    payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(payload, status=status)


class SimulatedApp:
    """The HTTP handlers around one population."""

    def __init__(self, population: Population, answers_log: Path | None = None):
        self.population = population
        self.answers_log = open(answers_log, "a", encoding="utf-8") if answers_log else None  # noqa: SIM115
        self.answered = 0
        self.created = int(time.time())

    def app(self) -> Any:
        from aiohttp import web

        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.health)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        return app

    async def health(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response({"status": "ok", "answered": self.answered})

    async def models(self, request: Any) -> Any:
        from aiohttp import web

        data = [
            {"id": name, "object": "model", "created": self.created, "owned_by": "valuelex-simulated"}
            for name in self.population.model_names
        ]
        return web.json_response({"object": "list", "data": data})

    async def chat(self, request: Any) -> Any:
        return await self._answer(request, "chat")

    async def completions(self, request: Any) -> Any:
        return await self._answer(request, "completions")

    async def _answer(self, request: Any, api: str) -> Any:
        from aiohttp import web

        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the request body is not JSON", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "the request body must be a JSON object", "invalid_request_error")
        if body.get("stream"):
            return _error(400, "stream is not supported by the simulated population", "invalid_request_error")
        try:
            ask = Ask.from_body(body, api)
        except ValueError as exc:
            return _error(400, str(exc), "invalid_request_error")
        if ask.model not in self.population.models:
            return _error(
                404,
                f"The model `{ask.model}` does not exist in the simulated population "
                f"({len(self.population.models)} models: {self.population.model_names[0]} ...)",
                "invalid_request_error",
                "model_not_found",
            )
        answer = self.population.answer(ask)
        self.answered += 1
        if self.answers_log is not None:
            self.answers_log.write(json.dumps({"api": api, "max_tokens": ask.max_tokens, **answer.truth}) + "\n")
            self.answers_log.flush()
        if api == "chat":
            message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None}
            choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": answer.finish_reason}
            choice["logprobs"] = answer.logprobs
            obj = "chat.completion"
        else:
            choice = {
                "index": 0,
                "text": answer.text,
                "finish_reason": answer.finish_reason,
                "logprobs": answer.logprobs,
            }
            obj = "text_completion"
        payload = {
            "id": f"simcmpl-{self.answered}",
            "object": obj,
            "created": int(time.time()),
            "model": ask.model,
            "system_fingerprint": f"sim-{self.population.spec.version}",
            "choices": [choice],
            "usage": {
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "total_tokens": answer.prompt_tokens + answer.completion_tokens,
            },
        }
        return web.json_response(payload)


async def serve(population: Population, host: str, port: int, answers_log: Path | None = None) -> None:
    """Serve until cancelled; prints ``READY <port>`` once the socket is bound."""
    from aiohttp import web

    state = SimulatedApp(population, answers_log)
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


class SimulatedServer(SimulatedProcess):
    """The simulated population's OpenAI-compatible server in a child process on 127.0.0.1.

    ``port``: the port to bind (the one the generated model cards name; default the population's
    ``server.port``); 0 takes any free port (``.port`` tells which). Use as a context manager
    (sync or async); the value is the ``/v1`` base URL. The runner starts the server of a
    ``provider: simulated`` card itself (:class:`valuelex.llm.simulated.SimulatedServers`).
    """

    def __init__(
        self,
        population: str | Path = DEFAULT_POPULATION,
        *,
        port: int | None = None,
        answers_log: str | Path | None = None,
        log_path: Path | None = None,
        startup_timeout_s: float = 60.0,
    ):
        if port is None:
            from .spec import load_spec

            port = load_spec(Path(population)).port
        super().__init__(
            population, port=port, answers_log=answers_log, log_path=log_path, startup_timeout_s=startup_timeout_s
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m valuelex.simulated.server``: serve a simulated population on 127.0.0.1."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--population", type=Path, default=DEFAULT_POPULATION, help="population.yaml")
    parser.add_argument("--port", type=int, help="port to bind (default: the population's server.port; 0: any free)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--answers-log", type=Path, help="append one JSON line of planted truth per answer")
    args = parser.parse_args(argv)
    population = Population.load(args.population)
    port = population.spec.port if args.port is None else args.port
    try:
        asyncio.run(serve(population, args.host, port, args.answers_log))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
