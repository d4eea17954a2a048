"""The simulated population: planted words and models, deterministic answers, the truth behind each text."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from valuelex.core import paths
from valuelex.core.errors import ConfigError
from valuelex.llm.cards import load_model_card, load_panel
from valuelex.methods.simulation import PlantedStructure, recovery_scores
from valuelex.psychometrics import efa
from valuelex.psychometrics.efa.settings import EFASettings
from valuelex.simulated import Ask, Population, load_spec, panel_respondents, write_configs
from valuelex.simulated import text as tx
from valuelex.simulated.recovery import match_answer
from valuelex.simulated.spec import DEFAULT_POPULATION


@pytest.fixture(scope="module")
def population() -> Population:
    return Population.load()


def ask(population: Population, model: str, prompt_id: str = "p01", temperature: float = 0.7, top_p: float = 0.95,
        seed: int | None = 1, max_tokens: int | None = 256, system: bool = True) -> Ask:  # fmt: skip
    """The request the runner sends for an elicitation prompt, as the server reads it."""
    text = population.spec.prompts[prompt_id]
    sys_text = population.spec.system_prompt if system else ""
    if population.models[model].api == "chat":
        return Ask(model, "chat", sys_text or "", text, temperature, top_p, seed, max_tokens)
    prompt = f"{sys_text}\n\nQuestion: {text}\nAnswer:".lstrip()
    return Ask(model, "completions", "", prompt, temperature, top_p, seed, max_tokens, ("\nQuestion:",))


def test_the_population_plants_the_taxonomy(population: Population) -> None:
    spec = population.spec
    assert population.factors == ["Competence", "Character", "Integrity"]
    assert len(population.models) == 33 and len(population.word_list) >= 120
    counts = Counter(m.stage for m in population.models.values())
    assert counts == spec.stage_counts
    # the first six models (the small panel) have every training stage
    assert {m.stage for m in list(population.models.values())[:6]} == {"pretrained", "instruct", "aligned"}
    # every example word of configs/taxonomy.yaml is planted on its own sub-dimension and dimension
    forms = {f: w for w, fs in population.word_forms.items() for f in fs.values() if f}
    for dimension, subs in spec.taxonomy.items():
        for sub, markers in subs.items():
            for marker in markers:
                word = forms[marker]
                assert population.subdimension[word] == sub and population.dimension[word] == dimension
    # each word loads mostly on its dimension's factor
    owner = np.abs(population.loadings).argmax(axis=1)
    assert all(
        population.factors[k] == population.dimension[w] for k, w in zip(owner, population.word_list, strict=True)
    )


def test_the_same_request_gets_the_same_answer_and_a_new_seed_another(population: Population) -> None:
    a = population.answer(ask(population, "sim-m01", seed=1))
    b = Population.load().answer(ask(population, "sim-m01", seed=1))  # a fresh population: nothing cached
    assert (a.text, a.truth) == (b.text, b.truth)
    others = {population.answer(ask(population, "sim-m01", seed=s)).text for s in range(2, 12)}
    assert len(others | {a.text}) >= 8
    # greedy decoding: the seed does not matter
    greedy = {population.answer(ask(population, "sim-m01", temperature=0.0, seed=s)).text for s in range(5)}
    assert len(greedy) == 1


def _respondent_words(population: Population, model: str, temperature: float, seed: int) -> list[list[str]]:
    out = []
    for prompt_id in population.spec.prompts:
        truth = population.answer(ask(population, model, prompt_id, temperature, seed=seed)).truth
        out.append([it["word"] for it in truth["items"] if it["kind"] == "value"])
    return out


def test_higher_temperature_gives_more_varied_answers_and_rarer_words(population: Population) -> None:
    rank = {w: i for i, w in enumerate(population.word_list)}
    distinct, rarity = {}, {}
    for temperature in (0.2, 1.2):
        d, r = [], []
        for model, seed in itertools.product(population.model_names[:8], (1, 2, 3)):
            answers = _respondent_words(population, model, temperature, seed)
            d.append(len({w for a in answers for w in a}))
            r.append(np.median([rank[w] for a in answers for w in set(a)]))
        distinct[temperature], rarity[temperature] = np.mean(d), np.mean(r)
    assert distinct[1.2] > 1.5 * distinct[0.2]  # a respondent names more different words over its 15 answers
    assert rarity[1.2] > rarity[0.2]  # ... and rarer ones


def test_the_truth_says_what_each_text_holds(population: Population) -> None:
    seen_forms: Counter = Counter()
    seen_outcomes: Counter = Counter()
    flags: Counter = Counter()
    truncated = 0
    for model, prompt_id, temperature in itertools.product(
        population.model_names, list(population.spec.prompts)[:6], (0.2, 1.0)
    ):
        answer = population.answer(ask(population, model, prompt_id, temperature, max_tokens=40))
        truth = answer.truth
        seen_forms[truth["form"]] += 1
        seen_outcomes[truth["outcome"]] += 1
        assert truth["respondent"].startswith(f"{model}|t=")
        if answer.finish_reason == "length":
            truncated += 1
            assert tx.count_tokens(answer.text) == 40 and truth["truncated"]
        else:
            assert tx.count_tokens(answer.text) <= 40
        for item in truth["items"]:
            if item["complete"]:
                assert item["surface"].lower() in answer.text.lower()
            flags["british"] += item["british"]
            flags["typo"] += item["typo"]
            flags[item["kind"]] += 1
            flags[item["form"]] += 1
        if truth["form"] in ("refusal", "empty", "junk"):
            assert truth["items"] == []
        if truth["form"] == "empty":
            assert not answer.text.strip()
    # every answer form the population's styles weigh appears, and every kind of difficulty
    weighted = {f for style in population.spec.styles.values() for f, w in style.forms.items() if w > 0}
    assert weighted <= set(seen_forms)
    assert {"refusal", "refusal_then_values", "empty"} <= set(seen_outcomes)
    assert truncated > 0
    assert all(flags[k] > 0 for k in ("british", "typo", "non_value", "adjective", "adverb")), flags


def test_forms_look_like_real_answers(population: Population) -> None:
    """A few shapes the parser must handle, as the simulator writes them."""
    texts = {}
    for model, prompt_id in itertools.product(population.model_names, population.spec.prompts):
        answer = population.answer(ask(population, model, prompt_id))
        texts.setdefault(answer.truth["form"], answer.text)
    assert re.match(r"^\s?\w[\w -]*(, [\w -]+)+\.?$", texts["comma"])
    assert re.search(r"^1[.)] ", texts["numbered"], re.M) and re.search(r"^2[.)] ", texts["numbered"], re.M)
    assert re.search(r"^[-*•] ", texts["bullets"], re.M)
    assert re.search(r"(\*\*\w[\w -]*\*\*: |\w - |^\w[\w -]*: )", texts["explained"], re.M)
    assert re.search(r"\b(as an ai|as a language model|sorry)\b", texts["refusal"], re.I)
    assert "\nQuestion:" not in texts["continuation"]  # the card's stop sequence cut it


def test_british_spelling_and_misspellings() -> None:
    rules = load_spec().british
    assert tx.british("behavior", rules) == "behaviour"
    assert tx.british("personalization", rules) == "personalisation"
    assert tx.british("honorable", rules) == "honourable"
    rng = np.random.default_rng(0)
    typos = {tx.misspell("responsibility", rng) for _ in range(30)}
    assert "responsibility" not in typos or len(typos) > 1
    assert all(abs(len(t) - len("responsibility")) <= 1 for t in typos)
    assert tx.misspell("kind", rng) == "kind"  # short words keep their spelling


def test_tokens_join_back_and_truncation_cuts_inside_words() -> None:
    text = "1. **Honesty**: I always tell the truth.\n2. Transparency"
    assert "".join(tx.tokens(text)) == text
    cut, truncated = tx.truncate(text, len(tx.tokens(text)) - 1)
    assert truncated and text.startswith(cut) and cut.endswith("Transpa")
    assert tx.truncate(text, 1000) == (text, False)
    assert tx.apply_stop(" honesty\nQuestion: more", ["\nQuestion:"]) == (" honesty", True)


def test_the_planted_structure_survives_into_the_text(population: Population) -> None:
    """The words each respondent actually says (the truth of its 15 answers) carry the planted factors:
    the EFA of notebook 03 on that respondents x words matrix finds them (the generator plants what it says)."""
    respondents = panel_respondents(population, "paper")[::2]  # 264 of the paper panel's 528
    rows = {}
    for r in respondents:
        words = set()
        for prompt_id in population.spec.prompts:
            a = ask(population, r.model, prompt_id, r.temperature, r.top_p, r.seed)
            words |= {it["word"] for it in population.answer(a).truth["items"] if it["kind"] == "value"}
        rows[r.id] = dict.fromkeys(words, 1)
    incidence = pd.DataFrame.from_dict(rows, orient="index").fillna(0).astype(int)
    structure = PlantedStructure(
        pd.DataFrame(population.loadings, index=population.word_list, columns=population.factors),
        population.phi,
        pd.Series(population.frequency, index=population.word_list),
    )
    analysis = efa.EFA(EFASettings(parallel_iter=10, seed=0)).fit(
        incidence[[w for w in population.word_list if w in incidence]]
    )
    at_three = efa.fit_efa(analysis.correlation, 3)
    scores = recovery_scores(structure, at_three)
    assert scores["min_congruence"] >= 0.9, scores
    assert scores["word_assignment_accuracy"] >= 0.9, scores


def test_the_truth_files(population: Population, tmp_path: Path) -> None:
    respondents = panel_respondents(population, "small")
    written = population.write_truth(tmp_path, respondents)
    words = pd.read_csv(written["words"])
    assert list(words["word"]) == population.word_list
    assert np.allclose(words[[f"loading_{f}" for f in population.factors]].to_numpy(), population.loadings, atol=1e-5)
    variants = pd.read_csv(written["variants"])
    assert {"honest", "honestly", "honesty"} <= set(variants.loc[variants["word"] == "honesty", "surface"])
    assert "ethical behaviour" in set(variants["surface"])
    people = pd.read_csv(written["respondents"])
    assert len(people) == 48 and set(people["respondent"]) == {r.id for r in respondents}
    stances = pd.read_csv(written["stances"])
    assert len(stances) == 33 * 6 and set(stances["stance"]) == {"high", "low"}
    propensity = pd.read_csv(written["respondent_propensity"], index_col=0)
    assert propensity.shape == (48, len(population.word_list))


def test_cards_and_panels_are_valid_and_keyless(population: Population, tmp_path: Path) -> None:
    write_configs(population, tmp_path / "cards", tmp_path / "panels", port=12345)
    card = load_model_card(tmp_path / "cards" / "sim-m04.yaml")
    assert card.base_url == "http://127.0.0.1:12345/v1" and card.api_key_env is None
    assert card.api == "completions" and card.stop == ("\nQuestion:",)  # a pretrained model
    paper = load_panel(tmp_path / "panels" / "sim_paper.yaml")
    assert len(paper.models) == 33 and len(paper.respondents()) == 528
    assert len(load_panel(tmp_path / "panels" / "sim_small_projective.yaml").respondents()) == 48
    # the committed copies are what the command writes by default: cards whose server the run starts
    configs = tmp_path / "configs"
    write_configs(population, configs / "simulated" / "models", configs / "panels")
    committed = load_panel(paths.PANELS / "sim_paper.yaml")
    first = committed.cards["sim-m01"]
    assert first.provider == "simulated" and first.base_url is None
    assert first.population == load_model_card(configs / "simulated" / "models" / "sim-m01.yaml").population
    for name in ("sim-m01", "sim-m04"):
        ours, theirs = (
            [line for line in (folder / f"{name}.yaml").read_text().splitlines() if not line.startswith("population:")]
            for folder in (paths.CONFIGS / "simulated" / "models", configs / "simulated" / "models")
        )
        assert ours == theirs
    assert (paths.PANELS / "sim_small.yaml").read_text() == (configs / "panels" / "sim_small.yaml").read_text()


def test_a_mistake_in_the_population_file_names_the_file_and_field(tmp_path: Path) -> None:
    data = yaml.safe_load(DEFAULT_POPULATION.read_text())
    base = DEFAULT_POPULATION.parent
    for name in ("vocabulary", "completions", "taxonomy", "prompts", "instrument"):
        data[name] = str((base / data[name]).resolve())
    data["structure"]["vocabulary_icc"] = 1.5
    bad = tmp_path / "population.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"population\.yaml: field 'structure\.vocabulary_icc'"):
        load_spec(bad)
    data["structure"]["vocabulary_icc"] = 0.2
    data["models"]["stages"]["aligned"] = 3
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"field 'models\.stages' adds up to 17"):
        load_spec(bad)


def test_match_answer_classifies_what_the_parser_did() -> None:
    items = [{"surface": s} for s in ("Honesty", "attention to detail", "respect", "kindness", "transparency")]
    descriptors = ["honesty", "attention", "detail", "respect are the values", "opinions"]
    outcome, source = match_answer(items, descriptors, "... kindness, transparency", truncated=True)
    assert outcome == ["found", "split", "glued", "lost", "lost to the truncation rule"]
    assert source == [0, 1, 1, 2, None]
