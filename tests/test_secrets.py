"""A planted canary key never reaches data, logs, figures or the console, even when a server echoes it.

Two keys are planted: an OpenAI-shaped one (``sk-...``) and one of letters and digits only
(as some providers issue), which no key-shaped pattern can catch: only redaction by value does.
The fault server echoes the Authorization header back in 401 and 500 error messages, as
OpenAI's API does for a wrong key, and inside the text of a 200 answer.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fault_server import FaultServer, write_card
from valuelex.core import paths
from valuelex.llm.store import ResponseStore

SCRIPT = Path(__file__).with_name("llm_live_run.py")


def files_containing(folder: Path, needles: list[str]) -> list[str]:
    hits = []
    if not folder.exists():
        return hits
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            hits += [f"{path} contains {n[:12]}..." for n in needles if n.encode() in data]
    return hits


def test_canary_keys_appear_nowhere(tmp_path: Path):
    canary_sk = "sk-canary-" + secrets.token_hex(16)
    canary_plain = "Canary" + secrets.token_hex(13)  # letters and digits only
    canaries = [canary_sk, canary_plain]
    dirs = {name: tmp_path / name for name in ("raw", "processed", "figures", "logs", "cards")}
    env = {
        **os.environ,
        "PYTHONPATH": str(paths.ROOT),
        "VALUELEX_RAW": str(dirs["raw"]),
        "VALUELEX_PROCESSED": str(dirs["processed"]),
        "VALUELEX_FIGURES": str(dirs["figures"]),
        "VALUELEX_TEST_KEY": canary_sk,
        "VALUELEX_TEST_KEY_PLAIN": canary_plain,
    }
    pairs = []
    for model in ("fault-sk", "fault-plain"):
        pairs += [
            [model, f"an ordinary question for {model}"],
            [model, f"[fault:401echo] a wrong key for {model}"],
            [model, f"[fault:500echo,500echo] a server that echoes the key of {model}, twice"],
            [model, f"[fault:429] rate limited {model}"],
            [model, f"[fault:malformed] broken body for {model}"],
            [model, f"[fault:echo200] a good answer that echoes the key of {model}"],
        ]
    (tmp_path / "messages.json").write_text(json.dumps(pairs))
    with FaultServer() as server:
        write_card(dirs["cards"], "fault-sk", server.base_url, api_key_env="VALUELEX_TEST_KEY")
        write_card(dirs["cards"], "fault-plain", server.base_url, api_key_env="VALUELEX_TEST_KEY_PLAIN")
        run = subprocess.run(
            [sys.executable, str(SCRIPT), "--cards", str(dirs["cards"]), "--messages", str(tmp_path / "messages.json")]
            + ["--study", "secrets", "--log-file", str(dirs["logs"] / "run.log")],
            capture_output=True,
            text=True,
            env=env,
            cwd=paths.ROOT,
            timeout=120,
        )
        stats = server.stats()
    assert run.returncode == 0, run.stderr[-3000:]

    # the canaries are nowhere
    assert not [c for c in canaries if c in run.stdout or c in run.stderr]
    assert "[REDACTED]" in run.stdout
    leaks = []
    for folder in (
        dirs["raw"],
        dirs["processed"],
        dirs["figures"],
        dirs["logs"],
        paths.COMMITTED_BUILD,
        paths.COMMITTED_FIGURES,
    ):
        leaks += files_containing(folder, canaries)
    assert not leaks

    # ...and that is not because nothing happened: the keys went out and the server echoed them
    assert stats["received"]["[fault:401echo] a wrong key for fault-sk"] == 1
    assert stats["received"]["[fault:500echo,500echo] a server that echoes the key of fault-plain, twice"] == 3
    store = ResponseStore(dirs["raw"] / "secrets")
    assert store.stats.final == 12 and not store.stats.issues
    echoed = [r for r in store.records() if r["status"] == "error" and "echo" in r["request"]["messages"][0]["content"]]
    assert len(echoed) == 2 * 3  # per model: one 401 (final) and two 500s (retried)
    assert all("Incorrect API key provided: [REDACTED]" in r["error"]["message"] for r in echoed)
    assert all("Incorrect API key provided: [REDACTED]" in r["error"]["raw_body"] for r in echoed)
    answers = [r["text"] for r in store.records() if "[fault:echo200]" in r["request"]["messages"][0]["content"]]
    assert len(answers) == 2 and all(a.endswith("(your key is [REDACTED])") for a in answers)
    assert (dirs["logs"] / "run.log").stat().st_size > 0  # DEBUG logging of openai/httpx was on


def test_notebook_06_checks_the_judges_key_before_its_first_paid_call(tmp_path: Path, monkeypatch):
    """The panel's key is there, the judge's is not: the notebook stops before asking anyone."""
    import papermill

    from tests.conftest import run_notebook

    cards = tmp_path / "cards"
    with FaultServer() as server:
        write_card(cards, "fault-panel", server.base_url, api_key_env="VALUELEX_TEST_PANEL_KEY")
        panel = tmp_path / "panel.yaml"
        panel.write_text(
            "name: keys\nmodels: [cards/fault-panel.yaml]\ndecoding: {temperature: [0.7], seed: [1]}\nmax_tokens: 16\n"
        )
        monkeypatch.setenv("VALUELEX_TEST_PANEL_KEY", "sk-test-panel-key-0000")
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        env = {name: str(tmp_path / name) for name in ("raw", "processed", "figures")}
        env = {f"VALUELEX_{name.upper()}": path for name, path in env.items()}
        (tmp_path / "out").mkdir()
        parameters = {"panel": str(panel), "mode": "live", "judge_model": "gpt-4"}
        with pytest.raises(papermill.PapermillExecutionError) as err:
            run_notebook("06_projective", tmp_path / "out", parameters, env)
        stats = server.stats()
    assert err.value.ename == "MissingKeyError"
    assert err.value.evalue == (
        "no usable API key in the environment for: OPENAI_API_KEY (model gpt-4). Export them before a live run."
    )
    assert stats["total"] == 0 and not (tmp_path / "raw").exists()


def _forms(key: str) -> list[re.Pattern[bytes]]:
    """What must not appear in any written file: the key (as a whole word when short), JSON-escaped whole
    (``\\u0073...``), with ``/`` escaped, and, for a long key, the first or last half of it (a cut key)."""
    escaped = "".join(f"\\u{ord(c):04x}" for c in key)
    forms = [key, escaped, key.replace("/", "\\/")]
    if len(key) >= 16:
        forms += [key[: len(key) // 2], key[len(key) // 2 :]]
    out = []
    for form in dict.fromkeys(forms):
        pattern = re.escape(form.encode())
        if len(key) < 8:  # a short key is a secret where it stands alone (valuelex.llm.wire.Redactor)
            pattern = rb"(?<![A-Za-z0-9_\-])" + pattern + rb"(?![A-Za-z0-9_\-])"
        out.append(re.compile(pattern, re.IGNORECASE if form == escaped else 0))
    return out


def test_an_echoed_key_is_absent_in_every_form_from_everything_written(tmp_path: Path):
    """Echoes that escape a plain search (issue 19): a dict key in logprobs, JSON-escaped in a malformed body,
    cut by the 64 KiB raw-body limit, and keys of 5 and 1 characters."""
    keys = {
        "fault-long": "Canary/" + secrets.token_hex(12) + "/key",  # with slashes, which JSON may escape
        "fault-five": "Kq7Zx",
        "fault-one": "Q",
    }
    dirs = {name: tmp_path / name for name in ("raw", "logs", "cards")}
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT), "VALUELEX_RAW": str(dirs["raw"])}
    pairs = []
    for model, key in keys.items():
        env[f"VALUELEX_TEST_KEY_{model[6:].upper()}"] = key
        for fault in ("echo200", "401echo", "logprobecho", "escapedecho", "bigecho"):
            pairs.append([model, f"[fault:{fault}] {fault} for {model}"])
    (tmp_path / "messages.json").write_text(json.dumps(pairs))
    with FaultServer() as server:
        for model in keys:
            write_card(dirs["cards"], model, server.base_url, api_key_env=f"VALUELEX_TEST_KEY_{model[6:].upper()}")
        run = subprocess.run(
            [sys.executable, str(SCRIPT), "--cards", str(dirs["cards"]), "--messages", str(tmp_path / "messages.json")]
            + ["--study", "echoes", "--log-file", str(dirs["logs"] / "run.log")],
            capture_output=True,
            env=env,
            cwd=paths.ROOT,
            timeout=120,
        )
        stats = server.stats()
    assert run.returncode == 0, run.stderr[-3000:]
    assert all(stats["received"][text] >= 1 for _, text in pairs)  # every echo was sent back
    written = {"stdout": run.stdout, "stderr": run.stderr}
    for folder in (dirs["raw"], dirs["logs"]):
        written |= {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    leaks = [
        f"{where}: {model} as {pattern.pattern[:40]!r}"
        for model, key in keys.items()
        for pattern in _forms(key)
        for where, data in written.items()
        if pattern.search(data)
    ]
    assert not leaks
    store = ResponseStore(dirs["raw"] / "echoes")
    assert not store.stats.issues
    bodies = [r["error"]["raw_body"] for r in store.records() if "[fault:bigecho]" in str(r["request"]) and r["error"]]
    assert len(bodies) == 3 and all(b.endswith(f"[... {70_000 - 65_536} more bytes]") for b in bodies)
    tokens = [r["logprobs"] for r in store.final_records() if "[fault:logprobecho]" in str(r["request"])]
    assert len(tokens) == 3 and all("[REDACTED]" in t["top_logprobs"][0] for t in tokens)


def test_a_key_echoed_in_every_answer_reaches_no_table_notebook_or_html(tmp_path: Path, monkeypatch):
    """Notebook 01 live against a server that echoes the key in every answer (as it is and JSON-escaped),
    with a 5-character and a long key: responses.csv, every table and figure, the executed notebook and
    its HTML hold neither, in any form."""
    import nbconvert

    from tests.conftest import run_notebook

    keys = {"fault-short": "Kq7Zx", "fault-long": "Canary-" + secrets.token_hex(12)}
    dirs = {name: tmp_path / name for name in ("raw", "processed", "figures", "out", "cards")}
    for folder in dirs.values():
        folder.mkdir()
    with FaultServer(echo_key=True) as server:
        for model, key in keys.items():
            env_name = f"VALUELEX_TEST_KEY_{model[6:].upper()}"
            monkeypatch.setenv(env_name, key)
            write_card(dirs["cards"], model, server.base_url, api_key_env=env_name)
        panel = tmp_path / "panel.yaml"
        panel.write_text(
            "name: echoes\nmodels: [cards/fault-short.yaml, cards/fault-long.yaml]\n"
            "decoding: {temperature: [0.7], seed: [1]}\nmax_tokens: 64\n"
        )
        env = {f"VALUELEX_{name.upper()}": str(dirs[name]) for name in ("raw", "processed", "figures")}
        numbers = run_notebook("01_elicitation", dirs["out"], {"panel": str(panel), "mode": "live"}, env)
        stats = server.stats()
    assert numbers["calls_made"] == 30 and stats["total"] == 30  # 2 models x 15 prompts, each answer an echo
    executed = dirs["out"] / "01_elicitation.ipynb"
    html, _ = nbconvert.HTMLExporter().from_filename(str(executed))
    (dirs["out"] / "01_elicitation.html").write_text(html, encoding="utf-8")
    responses = (dirs["processed"] / "responses.csv").read_text(encoding="utf-8")
    assert responses.count("(your key is [REDACTED]) (escaped: [REDACTED])") == 30  # the echoes were there
    written = {str(p): p.read_bytes() for name in dirs for p in dirs[name].rglob("*") if p.is_file()}
    leaks = [
        f"{where}: {model} as {pattern.pattern[:40]!r}"
        for model, key in keys.items()
        for pattern in _forms(key)
        for where, data in written.items()
        if pattern.search(data) and "/cards/" not in where
    ]
    assert not leaks
