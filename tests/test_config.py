"""Model cards and panels: every mistake is an error naming the file and the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from valuelex import paths
from valuelex.config import (
    ConfigError,
    MissingKeyError,
    check_keys,
    load_model_card,
    load_model_cards,
    load_panel,
)

CARD = """\
name: {name}
provider: openai_compatible
model: gpt-test
base_url: https://api.example.invalid/v1
api_key_env: {key_env}
family: Test
params_b: 7
training_stage: aligned
price_per_mtok: {{input: 0.5, output: 1.5}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def card_text(name: str = "remote", key_env: str = "VALUELEX_CFG_KEY", **changes: str | None) -> str:
    lines = CARD.format(name=name, key_env=key_env).splitlines()
    out = []
    for line in lines:
        field = line.split(":", 1)[0]
        if field in changes:
            if changes[field] is not None:
                out.append(f"{field}: {changes.pop(field)}")
            else:
                changes.pop(field)
        else:
            out.append(line)
    out += [f"{k}: {v}" for k, v in changes.items()]
    return "\n".join(out) + "\n"


def test_a_valid_card_loads(tmp_path: Path):
    card = load_model_card(write(tmp_path, "remote", card_text(limits="{concurrency: 4, rpm: 60}")))
    assert (card.name, card.model, card.training_stage, card.params_b) == ("remote", "gpt-test", "aligned", 7.0)
    assert (card.concurrency, card.rpm, card.tpm) == (4, 60, None)
    assert card.cost(1_000_000, 2_000_000) == pytest.approx(0.5 + 3.0)
    assert card.path == tmp_path / "remote.yaml"
    assert load_model_card(write(tmp_path, "plain", card_text("plain"))).concurrency is None


def test_malformed_yaml_names_file_and_line(tmp_path: Path):
    path = write(tmp_path, "broken", card_text("broken") + "stop: [unclosed\nnotes: x\n")
    with pytest.raises(ConfigError) as err:
        load_model_card(path)
    message = str(err.value)
    # the list opened on line 10 is still open when the parser meets the next field, on line 11
    assert message.startswith(f"{path}: not valid YAML at line 11, column 6: expected ','")


def test_top_level_must_be_a_mapping(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping .* got list"):
        load_model_card(write(tmp_path, "list", "- a\n- b\n"))


def test_unknown_field_is_named(tmp_path: Path):
    path = write(tmp_path, "remote", card_text(temprature="0.7"))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: unknown field 'temprature'")):
        load_model_card(path)
    nested = write(tmp_path, "remote", card_text(price_per_mtok="{input: 1, outptu: 2}"))
    with pytest.raises(ConfigError, match=re.escape("unknown field 'price_per_mtok.outptu'")):
        load_model_card(nested)


@pytest.mark.parametrize("field", ["model", "family", "training_stage", "price_per_mtok", "params_b"])
def test_missing_required_field_is_named(tmp_path: Path, field: str):
    path = write(tmp_path, "remote", card_text(**{field: None}))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: missing required field {field!r}")):
        load_model_card(path)


def test_remote_card_needs_endpoint_and_key_variable(tmp_path: Path):
    path = write(tmp_path, "remote", card_text(base_url=None))
    with pytest.raises(ConfigError, match="missing required field 'base_url' .needed for provider openai_compatible"):
        load_model_card(path)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("params_b", '"seven"', "field 'params_b' must be int or float or NoneType, got 'seven'"),
        ("n_ctx", "true", "field 'n_ctx' must be int, got True"),
        ("stop", '"###"', "field 'stop' must be list"),
        ("training_stage", "chatty", "field 'training_stage' must be one of pretrained, instruct, aligned"),
        ("provider", "magic", "field 'provider' must be one of openai_compatible, llama_cpp"),
        ("price_per_mtok", "{input: -1, output: 1}", "field 'price_per_mtok.input' must be a number >= 0"),
        ("limits", "{concurrency: 0}", "field 'limits.concurrency' must be a number >= 1"),
    ],
)
def test_wrong_type_or_value_is_named(tmp_path: Path, field: str, value: str, expected: str):
    path = write(tmp_path, "remote", card_text(**{field: value}))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {expected}")):
        load_model_card(path)


def test_name_must_match_the_file(tmp_path: Path):
    path = write(tmp_path, "remote", card_text("other"))
    with pytest.raises(
        ConfigError, match=re.escape(f"{path}: field 'name' is 'other' but must equal the file name 'remote'")
    ):
        load_model_card(path)


@pytest.mark.parametrize(
    "value",
    [
        "sk-" + "proj-abcdefghijklmnopqrstuvwxyz012345",  # OpenAI-style key (split so no scanner flags it)
        "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6",  # Mistral-style key: letters and digits only
        "AKIAIOSFODNN7EXAMPLE",  # AWS-style access key id: upper case, but no variable looks like this
        "openai_api_key",  # a name, but not an upper-case one
    ],
)
def test_api_key_env_holding_a_key_is_refused(tmp_path: Path, value: str):
    path = write(tmp_path, "remote", card_text(key_env=value))
    with pytest.raises(ConfigError) as err:
        load_model_card(path)
    assert str(err.value).startswith(f"{path}: field 'api_key_env' must be the NAME of an environment variable")
    assert value not in str(err.value)  # the error does not repeat the key


def test_missing_key_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("VALUELEX_CFG_KEY", raising=False)
    card = load_model_card(write(tmp_path, "remote", card_text()))
    with pytest.raises(MissingKeyError, match="environment variable VALUELEX_CFG_KEY is not set") as err:
        card.api_key()
    assert "remote" in str(err.value) and str(card.path) in str(err.value)
    monkeypatch.setenv("VALUELEX_CFG_KEY", "sk-cfg-test")
    assert card.api_key() == "sk-cfg-test"


def test_check_keys_lists_every_missing_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for name, var in (("a", "VALUELEX_CFG_A"), ("b", "VALUELEX_CFG_B"), ("c", "VALUELEX_CFG_C")):
        write(tmp_path, name, card_text(name, key_env=var))
    monkeypatch.delenv("VALUELEX_CFG_A", raising=False)
    monkeypatch.delenv("VALUELEX_CFG_C", raising=False)
    monkeypatch.setenv("VALUELEX_CFG_B", "present")
    cards = load_model_cards(tmp_path)
    with pytest.raises(MissingKeyError) as err:
        check_keys(cards)
    message = str(err.value)
    assert "VALUELEX_CFG_A (model a)" in message and "VALUELEX_CFG_C (model c)" in message
    assert "VALUELEX_CFG_B" not in message
    monkeypatch.setenv("VALUELEX_CFG_A", "x")
    monkeypatch.setenv("VALUELEX_CFG_C", "y")
    check_keys(list(cards.values()))  # no error once all are set


# panels ---------------------------------------------------------------------------------
PANEL = """\
name: small
models: [{models}]
decoding:
  temperature: [0.2, 1]
  top_p: 0.9
  seed: [1, 2, 3]
  samples: 2
max_tokens: 64
"""


def test_panel_crosses_models_with_the_grid(tmp_path: Path):
    write(tmp_path, "a", card_text("a"))
    write(tmp_path, "b", card_text("b"))
    panel = load_panel(write(tmp_path, "small", PANEL.format(models="a, b")), cards_folder=tmp_path)
    respondents = panel.respondents()
    assert len(respondents) == 2 * 2 * 1 * 3
    assert respondents[0].id == "a|t=0.2|p=0.9|s=1" and respondents[-1].id == "b|t=1|p=0.9|s=3"
    assert panel.samples == 2 and panel.max_tokens == 64 and set(panel.cards) == {"a", "b"}


def test_panel_naming_a_missing_card(tmp_path: Path):
    write(tmp_path, "a", card_text("a"))
    path = write(tmp_path, "small", PANEL.format(models="a, ghost"))
    with pytest.raises(ConfigError) as err:
        load_panel(path, cards_folder=tmp_path)
    assert str(err.value) == f"{path}: field 'models[1]' names 'ghost' but {tmp_path / 'ghost.yaml'} does not exist"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  samples: 2", "  samples: 0", "field 'decoding.samples' must be an integer >= 1"),
        ("  seed: [1, 2, 3]", "  seed: [1.5]", "field 'decoding.seed' must list integers"),
        ("  top_p: 0.9", "  top_p: []", "field 'decoding.top_p' must list at least one value"),
        ("  top_p: 0.9", "  topp: 0.9", "unknown field 'decoding.topp'"),
        ("max_tokens: 64", "max_tokens: lots", "field 'max_tokens' must be int"),
    ],
)
def test_panel_errors_name_the_field(tmp_path: Path, old: str, new: str, expected: str):
    write(tmp_path, "a", card_text("a"))
    path = write(tmp_path, "small", PANEL.format(models="a").replace(old, new))
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {expected}")):
        load_panel(path, cards_folder=tmp_path)


# the committed configs ------------------------------------------------------------------
def test_committed_local_cards_load():
    cards = load_model_cards()
    local = {n: c for n, c in cards.items() if c.provider == "llama_cpp"}
    assert set(local) >= {
        "smollm2-135m-instruct",
        "gemma3-270m-base",
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-1.5b-instruct",
    }
    assert cards["gemma3-270m-base"].training_stage == "pretrained" and cards["gemma3-270m-base"].api == "completions"
    for card in local.values():
        assert card.gguf is not None and re.fullmatch(r"[0-9a-f]{64}", card.gguf.sha256)
        assert card.api_key_env is None and card.api_key() == "no-key-needed"
        assert card.cost(10**6, 10**6) == 0.0


def test_committed_local_panel_has_120_respondents():
    panel = load_panel("local")
    assert panel.path == paths.PANELS / "local.yaml"
    assert len(panel.models) == 4 and len(panel.respondents()) == 120
    assert len({r.id for r in panel.respondents()}) == 120
