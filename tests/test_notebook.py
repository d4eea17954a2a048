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
    others = ("VALUELEX_BUILD", "VALUELEX_RAW", "VALUELEX_RAW_BASE")  # start() sets them too: undone below
    saved = {name: os.environ.get(name) for name in others}
    for name in ("PROCESSED", "FIGURES", "BUILD", "RAW", "RAW_BASE", "LOGS"):
        monkeypatch.setattr(paths, name, getattr(paths, name))
    try:
        settings = notebook.start("default", {"efa.n_factors": 2})
        assert settings.efa.n_factors == 2
        assert paths.PROCESSED == tmp_path / "p" and paths.FIGURES == tmp_path / "f"
        assert os.environ["VALUELEX_PROCESSED"] == str(tmp_path / "p")
        assert paths.RAW_BASE == (paths.DATA / "raw").resolve()  # a changed run reads the dataset as its base
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
