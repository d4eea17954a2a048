"""The simulated population's server through the real ``openai`` client and through ``LLMRunner``."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest
import yaml

from valuelex import elicit
from valuelex.core import paths
from valuelex.llm import local
from valuelex.llm.cards import load_panel
from valuelex.llm.limits import Limits
from valuelex.llm.request import Request
from valuelex.llm.runner import LLMRunner
from valuelex.llm.simulated import SimulatedProcess
from valuelex.llm.store import ResponseStore
from valuelex.projective import answer_distribution
from valuelex.projective.instrument import build_requests as projective_requests
from valuelex.projective.instrument import load_instrument
from valuelex.simulated import Population, SimulatedServer, write_configs
from valuelex.simulated.recovery import ask_of

SYSTEM = "Answer with a comma-separated list of single words."
PROMPT = "Give words that best describe your value system"


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.load()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The server on a free port, its answers log, and cards and panels pointing at it."""
    root = tmp_path_factory.mktemp("simserver")
    log = root / "answers.jsonl"
    running = SimulatedServer(port=0, answers_log=log, log_path=root / "server.log")
    with running as url:
        server = {"url": url, "root": root, "log": log, "port": running.port}
        write_configs(Population.load(), root / "cards", root / "panels", running.port)
        panel = yaml.safe_load((root / "panels" / "sim_small.yaml").read_text())
        panel["max_tokens"] = 40  # short answers, so that some are cut at the limit
        (root / "panels" / "sim_small_short.yaml").write_text(yaml.safe_dump(panel))
        yield server


def test_the_openai_client_gets_chat_completions_and_models(server) -> None:
    client = openai.OpenAI(base_url=server["url"], api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data][:2] == ["sim-m01", "sim-m02"]
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    first = client.chat.completions.create(
        model="sim-m01", messages=messages, temperature=0.7, top_p=0.95, seed=1, max_tokens=64
    )
    again = client.chat.completions.create(
        model="sim-m01", messages=messages, temperature=0.7, top_p=0.95, seed=1, max_tokens=64
    )
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].finish_reason in ("stop", "length")
    assert first.usage.completion_tokens > 0 and first.usage.prompt_tokens > 0
    # log-probabilities in the chat shape, as the stance judge asks for them
    judged = client.chat.completions.create(
        model="sim-m01", messages=messages, temperature=0.0, seed=0, max_tokens=1, logprobs=True, top_logprobs=20
    )
    token = judged.choices[0].logprobs.content[0]
    assert token.logprob <= 0 and 1 <= len(token.top_logprobs) <= 20
    assert judged.choices[0].finish_reason == "length" and judged.usage.completion_tokens == 1


def test_the_openai_client_gets_plain_completions_with_a_stop_sequence(server) -> None:
    client = openai.OpenAI(base_url=server["url"], api_key="unused", max_retries=0)
    prompt = f"{SYSTEM}\n\nQuestion: {PROMPT}\nAnswer:"
    texts = set()
    for seed in range(1, 25):  # sim-m04 is a pretrained model, asked as the paper panel's base models are
        out = client.completions.create(
            model="sim-m04", prompt=prompt, temperature=1.0, seed=seed, max_tokens=200, stop=["\nQuestion:"], logprobs=5
        )
        choice = out.choices[0]
        assert "\nQuestion:" not in choice.text
        assert len(choice.logprobs.tokens) == out.usage.completion_tokens
        texts.add(choice.text)
    assert len(texts) > 15


def test_errors_are_the_apis(server) -> None:
    client = openai.OpenAI(base_url=server["url"], api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError, match="does not exist"):  # e.g. a judge request sent here by mistake
        client.chat.completions.create(
            model="qwen2.5-coder-1.5b-instruct", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.BadRequestError, match="stream"):
        client.chat.completions.create(model="sim-m01", messages=[{"role": "user", "content": "hi"}], stream=True)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="sim-m01", messages=[{"role": "user", "content": "hi"}], temperature=3)


def _run(panel, requests: list[Request], store: Path, concurrency: int) -> dict[str, dict]:
    runner = LLMRunner(panel.cards, ResponseStore(store), mode="live", limits=Limits(concurrency=concurrency),
                       progress=False)  # fmt: skip
    records = runner.run(requests)
    assert runner.report.calls >= len(requests)
    return {r["key"]: r for r in records}


def test_llmrunner_answers_are_the_same_in_any_order_and_concurrency(server, population, tmp_path: Path) -> None:
    panel = load_panel(server["root"] / "panels" / "sim_small_short.yaml")
    requests = elicit.build_requests(panel, elicit.load_prompts())
    assert len(requests) == 48 * 15
    shuffled = list(requests)
    random.Random(7).shuffle(shuffled)
    one = _run(panel, requests, tmp_path / "one", concurrency=1)
    many = _run(panel, shuffled, tmp_path / "many", concurrency=32)
    assert one.keys() == many.keys()
    assert all(one[k]["text"] == many[k]["text"] for k in one)
    assert all(one[k]["finish_reason"] == many[k]["finish_reason"] for k in one)
    # the truth the population gives for each stored request is the stored answer's
    forms, reasons = set(), set()
    for record in many.values():
        answer = population.answer(ask_of(record["request"]))
        assert answer.text == record["text"]
        forms.add(answer.truth["form"])
        reasons.add(record["finish_reason"])
    assert {"comma", "numbered", "bullets", "explained", "sentence", "refusal", "empty", "continuation"} <= forms
    assert reasons == {"stop", "length"}
    # empty answers are re-asked (the default validator) and, with the same seed, stay empty: three attempts
    attempts = [json.loads(line) for p in sorted((tmp_path / "many").glob("*.jsonl")) for line in p.open()]
    empty_keys = {r["key"] for r in attempts if r["final"] and not (r["text"] or "").strip()}
    answered = [r for r in attempts if r["status"] != "sent"]  # each call is written twice: sent, then answered
    assert empty_keys and all(sum(r["key"] == k for r in answered) == 3 for k in empty_keys)
    assert all(sum(r["key"] == k and r["status"] == "sent" for r in attempts) == 3 for k in empty_keys)
    # the server's answer log holds one line per answer, with the same text
    logged = [json.loads(line) for line in server["log"].read_text().splitlines()]
    by_text = {(e["respondent"], e["prompt_id"]): e["text"] for e in logged if e["kind"] == "elicitation"}
    sample = list(many.values())[:50]
    for record in sample:
        p = record["request"]["params"]
        rid = f"{record['request']['model']}|t={p['temperature']:g}|p={p['top_p']:g}|s={p['seed']}"
        assert by_text[(rid, record["request"]["prompt_id"])] == record["text"]


def test_projective_completions_carry_the_planted_stance(server, population, tmp_path: Path) -> None:
    panel = load_panel(server["root"] / "panels" / "sim_small_projective.yaml")
    instrument = load_instrument()
    requests = projective_requests(panel, instrument, respondents_per_model=2)
    records = _run(panel, requests, tmp_path / "projective", concurrency=16)
    shown = {"high": 0, "low": 0, "neutral": 0}
    agree = total = 0
    for record in records.values():
        truth = population.answer(ask_of(record["request"])).truth
        assert truth["kind"] == "projective" and truth["stem_id"] == record["request"]["prompt_id"]
        shown[truth["shown"]] += 1
        if truth["shown"] != "neutral":
            total += 1
            agree += truth["shown"] == truth["planted"]
        assert record["text"].strip()
    assert all(shown.values())
    assert agree / total > 0.65  # completions show their model's planted stance (consistency 0.6-0.95)


def test_logprobs_through_llmrunner_as_the_judge_asks(server, tmp_path: Path) -> None:
    panel = load_panel(server["root"] / "panels" / "sim_small.yaml")
    requests = []
    for model in ("sim-m01", "sim-m04"):  # a chat model and a completions model
        card = panel.cards[model]
        extra = (("logprobs", True), ("top_logprobs", 20)) if card.api == "chat" else (("logprobs", 20),)
        requests.append(
            Request(
                model=model,
                messages=(("system", SYSTEM), ("user", PROMPT)),
                temperature=0.0,
                top_p=1.0,
                max_tokens=1,
                seed=0,
                prompt_id="judge-like",
                extra=extra,
            )  # fmt: skip
        )
    records = _run(panel, requests, tmp_path / "logprobs", concurrency=2)
    for record in records.values():
        assert record["logprobs"], record
        probs, mass = answer_distribution(record["logprobs"])  # the judge's reader takes both shapes
        assert probs.shape == (5,) and 0.0 <= mass <= 1.0


def _simulated_servers_of(pid: int) -> list[int]:
    """The simulated servers among the children of ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and "valuelex.simulated.server" in cmd:
            out.append(int(entry.name))
    return out


def test_the_runner_starts_the_server_of_simulated_cards_and_stops_it(population, tmp_path: Path, monkeypatch) -> None:
    """The committed cards are ``provider: simulated``: nobody starts a server, the runner does (once) and stops it."""
    panel = load_panel(paths.PANELS / "sim_small.yaml")
    assert {panel.cards[m].provider for m in panel.models} == {"simulated"}
    assert all(panel.cards[m].base_url is None for m in panel.models)
    monkeypatch.setattr(local, "DEFAULT_LOG_DIR", tmp_path / "logs")  # the server's log
    requests = elicit.build_requests(panel, elicit.load_prompts())[:: 48 * 15 // 40]
    assert len({r.model for r in requests}) == 6
    started: list[int] = []
    real_start = SimulatedProcess.start
    others = set(_simulated_servers_of(os.getpid()))  # the module's own server, if it runs

    def start(self: SimulatedProcess) -> str:
        url = real_start(self)
        started.append(self.proc.pid)
        assert set(_simulated_servers_of(os.getpid())) - others == {self.proc.pid}
        return url

    monkeypatch.setattr(SimulatedProcess, "start", start)
    records = _run(panel, requests, tmp_path / "store", concurrency=8)
    assert len(started) == 1  # one server for the six models of the batch
    assert set(_simulated_servers_of(os.getpid())) == others  # stopped when the batch ended
    with pytest.raises(ProcessLookupError):
        os.kill(started[0], 0)
    for record in records.values():
        assert population.answer(ask_of(record["request"])).text == record["text"]
    assert "READY" not in (tmp_path / "logs" / "simulated_server.log").read_text()  # its log, in the logs folder


def test_the_server_stops_with_its_context_and_dies_with_its_parent(tmp_path: Path) -> None:
    with SimulatedServer(port=0, log_path=tmp_path / "a.log") as url:
        pass
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/models", timeout=2)
    # a parent killed with SIGKILL cannot clean up: the server goes anyway (PR_SET_PDEATHSIG)
    script = (
        "import sys, time\n"
        "from valuelex.simulated import SimulatedServer\n"
        f"s = SimulatedServer(port=0, log_path={str(tmp_path / 'b.log')!r})\n"
        "s.start(); print(s.base_url, s.proc.pid, flush=True); time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=paths.ROOT)
    url, pid = parent.stdout.readline().split()
    with urllib.request.urlopen(f"{url}/models", timeout=5) as resp:
        assert resp.status == 200
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            break
        try:  # reap it if it is a zombie we can see (it is not our child: nothing to reap)
            time.sleep(0.1)
        except KeyboardInterrupt:
            raise
    else:
        pytest.fail(f"the simulated server (pid {pid}) outlived its killed parent")
