"""Preflight: before anything is paid, ask each model card's endpoint whether its model is served.

Listing an endpoint's models (``GET /models``) costs nothing, so ``valuelex check`` can tell,
before a live run, which cards are **available**, which models are **not listed** (retired or
renamed: many 2024 models of the paper panel may be gone), which endpoints are
**unreachable**, which keys are **missing** or **rejected**. Local llama.cpp cards are checked
for their installed GGUF file instead (their server is started only for a run), simulated cards
for their model in the population file (the run starts the simulated server).

``valuelex check RUN`` checks only the cards the run would call (:func:`cards_to_check`): the
models with calls still to make, and the judge when it has some. A replay run calls nothing, so
there is nothing to check; ``valuelex check --all`` checks every card.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core import paths
from ..core.display import Report
from ..llm.cards import MissingKeyError, ModelCard
from ..llm.wire import redact

#: Seconds to wait for an endpoint's model list.
DEFAULT_TIMEOUT_S = 10.0
#: What each status means, in the order the report lists them.
STATUSES = {
    "available": "the endpoint lists the card's model id",
    "installed": "local model: the GGUF file is installed",
    "started by the run": "simulated model (valuelex.simulated): the run starts its server; the population has it",
    "not listed": "the endpoint answers but does not list the model id (retired or renamed?)",
    "no model list": "the endpoint answers but cannot list its models; the id is unchecked",
    "key missing": "the card's key variable is not set; nothing was sent",
    "key rejected": "the endpoint refused the key (401/403)",
    "unreachable": "no answer from the endpoint (network, URL or server down)",
    "not installed": "local model: ./run_all.sh --setup-only --local-models NAME installs it",
}


@dataclass(frozen=True)
class CardStatus:
    """The preflight verdict on one model card."""

    card: str
    model: str
    endpoint: str
    status: str
    detail: str = ""
    last_checked: str = ""  # the card's own record of when its id and price were checked


def _listed(model: str, served: Iterable[str]) -> bool:
    """Whether ``model`` is among the served ids (some providers prefix ids, e.g. ``models/``)."""
    return any(s == model or s.endswith("/" + model) for s in served)


def check_card(card: ModelCard, timeout_s: float = DEFAULT_TIMEOUT_S, models_dir: Path | None = None) -> CardStatus:
    """Ask one card's endpoint for its model list (or look for a local card's GGUF file)."""
    return dataclasses.replace(_check_card(card, timeout_s, models_dir), last_checked=card.checked or "never")


def _check_card(card: ModelCard, timeout_s: float, models_dir: Path | None) -> CardStatus:
    import openai

    if card.provider == "llama_cpp":
        from ..llm.local import gguf_path

        path = gguf_path(card, models_dir or paths.MODELS_DIR)
        if path.exists():
            return CardStatus(card.name, card.model, "local llama.cpp", "installed", str(path.name))
        install = f"{path.name} missing: ./run_all.sh --setup-only --local-models {card.name}"
        return CardStatus(card.name, card.model, "local llama.cpp", "not installed", install)
    if card.provider == "simulated":
        from ..simulated import Population

        population = Population.load(card.population)
        if card.model in population.models:
            return CardStatus(card.name, card.model, "simulated server", "started by the run", card.population.name)
        detail = f"{card.population} has no model {card.model!r}"
        return CardStatus(card.name, card.model, "simulated server", "not listed", detail)
    endpoint = card.base_url or ""
    try:
        key = card.api_key()
    except MissingKeyError:
        return CardStatus(card.name, card.model, endpoint, "key missing", f"export {card.api_key_env}")
    client = openai.OpenAI(base_url=endpoint, api_key=key, timeout=timeout_s, max_retries=0)
    try:
        served = [m.id for m in client.models.list()]
    except openai.AuthenticationError as exc:
        return CardStatus(card.name, card.model, endpoint, "key rejected", redact(str(exc), [key])[:200])
    except openai.PermissionDeniedError as exc:
        return CardStatus(card.name, card.model, endpoint, "key rejected", redact(str(exc), [key])[:200])
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        return CardStatus(card.name, card.model, endpoint, "unreachable", redact(str(exc), [key])[:200])
    except openai.APIStatusError as exc:
        return CardStatus(
            card.name, card.model, endpoint, "no model list", f"HTTP {exc.status_code}: the id is unchecked"
        )
    finally:
        client.close()
    if _listed(card.model, served):
        return CardStatus(card.name, card.model, endpoint, "available")
    return CardStatus(card.name, card.model, endpoint, "not listed", f"{len(served)} other models listed")


@dataclass(repr=False)  # a console shows the report, not the dataclass
class Preflight(Report):
    """The verdict on every card a run would use."""

    statuses: list[CardStatus]
    title: str = "Preflight: are the run's models reachable? (nothing paid)"

    def table(self) -> pd.DataFrame:
        order = {s: i for i, s in enumerate(STATUSES)}
        rows = sorted(self.statuses, key=lambda s: (order.get(s.status, 99), s.card))
        return pd.DataFrame(
            [vars(s) for s in rows], columns=["card", "model", "endpoint", "status", "detail", "last_checked"]
        )

    @property
    def ready(self) -> bool:
        """Every card can be called (available, installed, or at least answering without a model list)."""
        return all(s.status in ("available", "installed", "started by the run", "no model list") for s in self.statuses)

    def counts(self) -> dict[str, int]:
        return {s: n for s in STATUSES if (n := sum(x.status == s for x in self.statuses))}

    def sections(self) -> list[tuple[str, object]]:
        legend = "\n".join(f"{s}: {STATUSES[s]}" for s in self.counts())
        return [("", self.table().set_index("card")), ("Statuses", legend), ("Counts", self.counts())]

    def metrics(self) -> dict[str, int]:
        return self.counts()


def check(cards: Iterable[ModelCard], timeout_s: float = DEFAULT_TIMEOUT_S, workers: int = 8) -> Preflight:
    """Check every card concurrently (each endpoint is asked once per card)."""
    cards = list(cards)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(cards)))) as pool:
        statuses = list(pool.map(lambda c: check_card(c, timeout_s), cards))
    return Preflight(statuses)


def cards_to_check(run) -> list[ModelCard]:  # noqa: ANN001 - a valuelex.settings.RunSettings
    """The cards ``run`` would call: models with calls still to make and the judge when it has some,
    in plan order; none for a replay run (it calls nothing) or a live run with everything stored."""
    from .plan import calling, run_cards

    cards = run_cards(run)
    return [cards[name] for name in calling(run)]


def nothing_to_check(run) -> str:  # noqa: ANN001
    """What ``valuelex check RUN`` says when the run calls no model."""
    if run.mode != "live":
        return f"nothing to check: run {run.name!r} is a replay run, it reads stored answers and calls no model"
    return f"nothing to check: every call of run {run.name!r} is stored already, it calls no model"
