"""Fixtures for every test."""
import pytest


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Every test has its own empty Glassbox home (runs, downloaded datasets): nothing a test
    writes reaches another test or the user's real ~/.glassbox."""
    monkeypatch.setenv("GLASSBOX_HOME", str(tmp_path))
    return tmp_path
