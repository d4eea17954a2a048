"""Model cards and panels: every mistake is an error naming the file and the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from valuelex.core import paths
from valuelex.core.errors import ConfigError
from valuelex.llm.cards import (
    MissingKeyError,
    check_keys,
    check_run_keys,
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


def test_remote_card_needs_an_endpoint(tmp_path: Path):
    path = write(tmp_path, "remote", card_text(base_url=None))
    with pytest.raises(ConfigError, match="missing required field 'base_url' .needed for provider openai_compatible"):
        load_model_card(path)


def test_a_keyless_endpoint_needs_no_key_variable(tmp_path: Path, monkeypatch):
    """Ollama or vLLM without --api-key: no api_key_env, and no key is asked for before a live run."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    card = load_model_card(write(tmp_path, "keyless", card_text("keyless", api_key_env=None)))
    assert card.api_key_env is None and card.api_key()  # a placeholder: the SDK refuses an empty key
    assert check_keys({card.name: card}) == []


@pytest.mark.parametrize("path", sorted((paths.CONFIGS / "models" / "examples").glob("*.yaml")), ids=lambda p: p.stem)
def test_example_cards_are_valid_keyless_cards(path: Path):
    card = load_model_card(path)
    assert card.provider == "openai_compatible" and card.api_key_env is None
    assert card.base_url.startswith("http://127.0.0.1:") and card.base_url.endswith("/v1")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("params_b", '"seven"', "field 'params_b' must be int or float or NoneType, got 'seven'"),
        ("n_ctx", "true", "field 'n_ctx' must be int, got True"),
        ("stop", '"###"', "field 'stop' must be list"),
        ("training_stage", "chatty", "field 'training_stage' must be one of pretrained, instruct, aligned"),
        ("provider", "magic", "field 'provider' must be one of openai_compatible, llama_cpp, simulated"),
        ("price_per_mtok", "{input: -1, output: 1}", "field 'price_per_mtok.input' must be a number >= 0"),
        ("limits", "{concurrency: 0}", "field 'limits.concurrency' must be an integer >= 1, got 0"),
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


# every bad input of issue 15, with the exact message ---------------------------------------
REPEAT = "; each value makes new respondents, so a repeat would count the same respondents twice"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "base_url",
            "api.example.invalid/v1",
            "field 'base_url' must be an http:// or https:// URL with a host, got 'api.example.invalid/v1'",
        ),
        (
            "base_url",
            "ftp://example.invalid",
            "field 'base_url' must be an http:// or https:// URL with a host, got 'ftp://example.invalid'",
        ),
        ("n_ctx", "-1", "field 'n_ctx' must be an integer >= 0, got -1"),
        ("params_b", "-7", "field 'params_b' must be a number >= 0, got -7"),
        ("model", '" "', "field 'model' must be a non-empty string, got ' '"),
        ("stop", '[""]', "field 'stop' must list non-empty strings, got ['']"),
        ("limits", "{concurrency: 2.5}", "field 'limits.concurrency' must be an integer >= 1, got 2.5"),
        ("limits", "{rpm: 0}", "field 'limits.rpm' must be a number >= 1, got 0"),
        ("price_per_mtok", "{input: .nan, output: 1}", "field 'price_per_mtok.input' must be a number >= 0, got nan"),
        (
            "prompt_template",
            '"Q: {user}"',
            "field 'prompt_template' is used only with api completions (this card: api chat)",
        ),
        ("gguf", "{file: x}", "field 'gguf' is used only with provider llama_cpp"),
    ],
)
def test_card_values_out_of_range(tmp_path: Path, field: str, value: str, expected: str):
    path = write(tmp_path, "remote", card_text(**{field: value}))
    with pytest.raises(ConfigError) as err:
        load_model_card(path)
    assert str(err.value) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('"{system} Q: {usr}"', "field 'prompt_template' has unknown placeholder {usr} (allowed: {system}, {user})"),
        ('"{user} {0}"', "field 'prompt_template' has unknown placeholder {0} (allowed: {system}, {user})"),
        ('"{user.name}"', "field 'prompt_template' has unknown placeholder {user.name} (allowed: {system}, {user})"),
        (
            '"Q: {user"',
            "field 'prompt_template' is not a valid template (expected '}' before end of string; write {{ for a brace)",
        ),
        ('"{system} only"', "field 'prompt_template' must contain the placeholder {user}"),
    ],
)
def test_prompt_template_placeholders_are_checked(tmp_path: Path, template: str, expected: str):
    path = write(tmp_path, "base", card_text("base", api="completions", prompt_template=template))
    with pytest.raises(ConfigError) as err:
        load_model_card(path)
    assert str(err.value) == f"{path}: {expected}"
    ok = write(tmp_path, "base", card_text("base", api="completions", prompt_template='"{{json}} {system} {user}"'))
    assert load_model_card(ok).prompt_template == "{{json}} {system} {user}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("name: [unclosed\n", "not valid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'"),
        ("- a\n", "expected a mapping of fields at the top level, got list"),
    ],
)
def test_yaml_problems_name_the_file(tmp_path: Path, text: str, expected: str):
    path = write(tmp_path, "remote", text)
    with pytest.raises(ConfigError) as err:
        load_model_card(path)
    assert str(err.value) == f"{path}: {expected}"
    with pytest.raises(ConfigError) as err:
        load_panel(path, cards_folder=tmp_path)
    assert str(err.value) == f"{path}: {expected}"


def test_files_that_cannot_be_read(tmp_path: Path):
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'dir.yaml'}: is a directory, not a YAML file")):
        load_model_card(tmp_path / "dir.yaml")
    (tmp_path / "latin.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'latin.yaml'}: not UTF-8 text (byte 10)")):
        load_model_card(tmp_path / "latin.yaml")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'none.yaml'}: file not found")):
        load_model_card(tmp_path / "none.yaml")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  temperature: [0.2, 1]",
            "  temperature: [0.7, 0.7]",
            "field 'decoding.temperature' lists 0.7 twice" + REPEAT,
        ),
        (
            "  temperature: [0.2, 1]",
            "  temperature: [1, 1.0]",
            "field 'decoding.temperature' lists 1 and 1.0 (the same value)" + REPEAT,
        ),
        ("  top_p: 0.9", "  top_p: [0.9, 0.90]", "field 'decoding.top_p' lists 0.9 twice" + REPEAT),
        ("  seed: [1, 2, 3]", "  seed: [1, 2, 1]", "field 'decoding.seed' lists 1 twice" + REPEAT),
        (
            "  temperature: [0.2, 1]",
            "  temperature: [100]",
            "field 'decoding.temperature' must be a number from 0 to 2, got 100",
        ),
        (
            "  temperature: [0.2, 1]",
            "  temperature: [-0.1]",
            "field 'decoding.temperature' must be a number from 0 to 2, got -0.1",
        ),
        (
            "  temperature: [0.2, 1]",
            '  temperature: ["hot"]',
            "field 'decoding.temperature' must be a number from 0 to 2, got 'hot'",
        ),
        ("  top_p: 0.9", "  top_p: 1.5", "field 'decoding.top_p' must be a number from 0 to 1, got 1.5"),
        ("  seed: [1, 2, 3]", "  seed: [-1]", "field 'decoding.seed' must list integers >= 0 (or null), got -1"),
        ("max_tokens: 64", "max_tokens: 0", "field 'max_tokens' must be an integer from 1 to 131,072, got 0"),
        ("max_tokens: 64", "max_tokens: -5", "field 'max_tokens' must be an integer from 1 to 131,072, got -5"),
        (
            "max_tokens: 64",
            "max_tokens: 1000000000000",
            "field 'max_tokens' must be an integer from 1 to 131,072, got 1000000000000",
        ),
        ("max_tokens: 64", "max_tokens: 1e12", "field 'max_tokens' must be int, got '1e12'"),
        ("models: [a]", "models: []", "field 'models' must list at least one model"),
        ("name: small", "name: ''", "field 'name' must be a non-empty string, got ''"),
        (
            "max_tokens: 64",
            "max_tokens: 64\nextra: 1",
            "unknown field 'extra' (allowed: name, models, decoding, max_tokens, description)",
        ),
    ],
)
def test_panel_bad_values_are_refused_with_the_field(tmp_path: Path, old: str, new: str, expected: str):
    write(tmp_path, "a", card_text("a"))
    text = PANEL.format(models="a")
    assert old in text
    path = write(tmp_path, "small", text.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_panel(path, cards_folder=tmp_path)
    assert str(err.value) == f"{path}: {expected}"


def test_a_model_with_its_own_grid_is_checked_too(tmp_path: Path):
    write(tmp_path, "a", card_text("a"))
    path = write(tmp_path, "small", PANEL.format(models="{card: a, temperature: [0.5, 0.50]}"))
    with pytest.raises(ConfigError) as err:
        load_panel(path, cards_folder=tmp_path)
    assert str(err.value) == f"{path}: field 'models[0].temperature' lists 0.5 twice" + REPEAT
    path = write(tmp_path, "small", PANEL.format(models="{card: a, topp: [0.5]}"))
    with pytest.raises(
        ConfigError, match=re.escape("unknown field 'models[0].topp' (allowed: card, temperature, top_p, seed)")
    ):
        load_panel(path, cards_folder=tmp_path)


def test_values_that_collide_as_respondent_ids_are_refused(tmp_path: Path):
    write(tmp_path, "a", card_text("a"))
    path = write(tmp_path, "small", PANEL.format(models="a").replace("[0.2, 1]", "[0.7, 0.7000001]"))
    with pytest.raises(ConfigError) as err:
        load_panel(path, cards_folder=tmp_path)
    assert (
        str(err.value) == f"{path}: field 'decoding' makes respondent 'a|t=0.7|p=0.9|s=1' twice; use values that differ"
    )


def test_a_broken_card_no_run_uses_breaks_nothing(tmp_path: Path):
    write(tmp_path, "a", card_text("a"))
    write(tmp_path, "broken", "name: broken\nprovider: [oops\n")
    panel = load_panel(write(tmp_path, "small", PANEL.format(models="a")), cards_folder=tmp_path)
    assert set(panel.cards) == {"a"}
    catalog = load_model_cards(tmp_path)
    assert "broken" in catalog and "ghost" not in catalog and list(catalog) == ["a", "broken", "small"]
    assert catalog["a"].name == "a" and catalog.get("ghost") is None
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'broken.yaml'}: not valid YAML")):
        catalog["broken"]  # noqa: B018 - read when used, and then the error names it
    with pytest.raises(ConfigError, match="broken.yaml"):
        catalog.validate_all()


@pytest.mark.parametrize("value", ["sk-abc123\n", " sk-abc123", "sk-abc 123", "sk-abc\t123", "sk-abc\x07123"])
def test_a_key_with_whitespace_or_control_characters_is_refused(tmp_path: Path, monkeypatch, value: str):
    monkeypatch.setenv("VALUELEX_CFG_KEY", value)
    card = load_model_card(write(tmp_path, "remote", card_text()))
    with pytest.raises(MissingKeyError) as err:
        card.api_key()
    assert str(err.value) == (
        f"model 'remote' ({card.path}): environment variable VALUELEX_CFG_KEY holds spaces, a line break or control "
        'characters around or inside the key; export the key alone (e.g. export VALUELEX_CFG_KEY="$(tr -d '
        "'[:space:]' < keyfile)\")"
    )
    assert "abc" not in str(err.value)
    with pytest.raises(MissingKeyError, match="holds spaces"):
        check_keys([card])


def test_check_run_keys_covers_the_judge(tmp_path: Path, monkeypatch):
    """Notebook 06 asks the panel and then a judge: both keys are checked before the first call."""
    write(tmp_path, "a", card_text("a", key_env="VALUELEX_CFG_A"))
    write(tmp_path, "judge", card_text("judge", key_env="VALUELEX_CFG_JUDGE"))
    panel = write(tmp_path, "small", PANEL.format(models="a"))
    monkeypatch.setenv("VALUELEX_CFG_A", "sk-present")
    monkeypatch.delenv("VALUELEX_CFG_JUDGE", raising=False)
    check_run_keys(panel, [], cards_folder=tmp_path)  # the panel alone is fine
    with pytest.raises(MissingKeyError) as err:
        check_run_keys(panel, ["judge"], cards_folder=tmp_path)
    assert str(err.value) == (
        "no usable API key in the environment for: VALUELEX_CFG_JUDGE (model judge). Export them before a live run."
    )
    with pytest.raises(ConfigError, match="no model card 'ghost'"):
        check_run_keys(panel, ["ghost"], cards_folder=tmp_path)


def test_committed_cards_all_validate():
    assert len(load_model_cards().validate_all()) >= 37
