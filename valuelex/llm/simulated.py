"""The endpoint of a ``provider: simulated`` card: the simulated population's server, started by the run.

:class:`SimulatedProcess` starts ``python -m valuelex.simulated.server`` (the population's
OpenAI-compatible server, :mod:`valuelex.simulated.server`) as a child process, as
:class:`valuelex.llm.local.LlamaServer` starts llama.cpp: a context manager, sync or async, whose
value is the ``/v1`` base URL; the server is stopped on exit, on errors and Ctrl-C, and on Linux
when its parent dies. :class:`SimulatedServers` is what ``LLMRunner`` holds for one batch of calls:
one server per population file, on a free port. The server is named by its module, never
imported: this layer sits below the population (``tests/test_layers.py``).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..core import paths
from . import local


class SimulatedProcess(local.ServerProcess):
    """A simulated population's OpenAI-compatible server (``python -m valuelex.simulated.server``) in a child
    process on 127.0.0.1.

    ``port``: the port to bind; 0 (the default) takes any free port (``.port`` tells which). Use as a
    context manager (sync or async); the value is the ``/v1`` base URL.
    ``valuelex.simulated.SimulatedServer`` is this with the population's defaults (its file, its port).
    """

    def __init__(
        self,
        population: str | Path,
        *,
        port: int = 0,
        answers_log: str | Path | None = None,
        log_path: Path | None = None,
        startup_timeout_s: float = 60.0,
    ):
        self.population_path = Path(population)
        self.port = port
        self.answers_log = Path(answers_log) if answers_log else None
        self.log_path = Path(log_path) if log_path else local.DEFAULT_LOG_DIR / "simulated_server.log"
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen[str] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> str:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "valuelex.simulated.server",
            "--population", str(self.population_path), "--port", str(self.port),
        ]  # fmt: skip
        if self.answers_log:
            self.answers_log.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--answers-log", str(self.answers_log)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
            start_new_session=True, preexec_fn=local._die_with_parent, cwd=paths.ROOT,
        )  # fmt: skip
        log.close()
        line = self.proc.stdout.readline()  # type: ignore[union-attr]  # blocks until bound or exited
        if not line.startswith("READY "):
            self.proc.wait(timeout=10)
            tail = self.log_path.read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(
                f"the simulated server did not start (exit code {self.proc.returncode}); log {self.log_path}:\n{tail}"
            )
        self.port = int(line.split()[1])
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return self.base_url
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"the simulated server on port {self.port} did not answer") from None
                time.sleep(0.05)

    def stop(self) -> None:
        local.stop_process(self.proc)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()


class SimulatedServers:
    """The simulated servers one batch of ``LLMRunner`` calls needs: one per population file, on a free port.

    A card with ``provider: simulated`` names its population (``population:``); the runner asks it
    through ``endpoint(card)``, which starts that population's server the first time a model needs
    it (as the runner starts llama.cpp for a ``llama_cpp`` card) and keeps it for the batch's other
    models; every server stops when the batch ends (``async with``), on errors and on Ctrl-C.
    """

    def __init__(self, log_dir: Path | None = None):
        self.log_dir = log_dir or local.DEFAULT_LOG_DIR
        self.running: dict[Path, SimulatedProcess] = {}

    def endpoint(self, card: Any) -> Any:
        """An async context manager whose value is the base URL of ``card.population``'s server."""

        @contextlib.asynccontextmanager
        async def started() -> Any:
            server = self.running.get(card.population)
            if server is None:
                server = SimulatedProcess(card.population, port=0, log_path=self.log_dir / "simulated_server.log")
                await server.__aenter__()
                self.running[card.population] = server
            yield server.base_url

        return started()

    def stop(self) -> None:
        for server in self.running.values():
            server.stop()
        self.running.clear()

    async def __aenter__(self) -> SimulatedServers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
