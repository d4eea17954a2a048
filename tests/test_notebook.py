"""Notebook helpers: numbers kept for the tests without being shown; tables as a reader expects them."""

from __future__ import annotations

import os

import pandas as pd

from valuelex import notebook, paths


def test_frame_html_left_aligns_text_and_rounds():
    df = pd.DataFrame({"word": ["care", "truth"], "loading": [0.512345, 0.3], "units": [1200, 7]})
    html = notebook.frame_html(df)
    assert "0.512" in html and "0.512345" not in html
    assert "1,200" in html
    assert "text-align: left" in html


def test_start_uses_the_environment_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("VALUELEX_PROCESSED", str(tmp_path / "p"))
    monkeypatch.setenv("VALUELEX_FIGURES", str(tmp_path / "f"))
    saved = (paths.PROCESSED, paths.FIGURES, paths.BUILD, paths.RAW, paths.LOGS)
    try:
        settings = notebook.start("default", {"efa.n_factors": 2})
        assert settings.efa.n_factors == 2
        assert paths.PROCESSED == tmp_path / "p" and paths.FIGURES == tmp_path / "f"
        assert os.environ["VALUELEX_PROCESSED"] == str(tmp_path / "p")
    finally:
        paths.PROCESSED, paths.FIGURES, paths.BUILD, paths.RAW, paths.LOGS = saved
        for name in ("VALUELEX_BUILD", "VALUELEX_RAW"):
            monkeypatch.delenv(name, raising=False)
