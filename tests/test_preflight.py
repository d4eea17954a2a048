"""Preflight: every card gets a verdict before anything is paid."""

from __future__ import annotations

from dataclasses import replace

from valuelex import paths, preflight
from valuelex.config import load_model_card
from valuelex.local_models import free_port


def _api_card(**changes):
    card = load_model_card(paths.MODEL_CARDS / "gpt-4.yaml")
    return replace(card, **changes)


def test_missing_key_is_reported_without_contacting(monkeypatch):
    monkeypatch.delenv("VALUELEX_TEST_UNSET_KEY", raising=False)
    status = preflight.check_card(_api_card(api_key_env="VALUELEX_TEST_UNSET_KEY"))
    assert status.status == "key missing"
    assert status.detail == "export VALUELEX_TEST_UNSET_KEY"


def test_closed_port_is_unreachable(monkeypatch):
    monkeypatch.setenv("VALUELEX_TEST_KEY", "test-key-not-real")
    url = f"http://127.0.0.1:{free_port()}/v1"
    status = preflight.check_card(_api_card(api_key_env="VALUELEX_TEST_KEY", base_url=url), timeout_s=2)
    assert status.status == "unreachable"
    assert "test-key-not-real" not in status.detail


def test_local_card_without_gguf_is_not_installed(tmp_path):
    card = load_model_card(paths.MODEL_CARDS / "smollm2-135m-instruct.yaml")
    status = preflight.check_card(card, models_dir=tmp_path)
    assert status.status == "not installed"


def test_report_orders_and_counts(monkeypatch):
    monkeypatch.delenv("VALUELEX_TEST_UNSET_KEY", raising=False)
    cards = [_api_card(name=f"m{i}", api_key_env="VALUELEX_TEST_UNSET_KEY") for i in range(3)]
    result = preflight.check(cards)
    assert result.counts() == {"key missing": 3}
    assert not result.ready
    assert list(result.table()["card"]) == ["m0", "m1", "m2"]
    assert "key missing: the card's key variable is not set" in str(result)
