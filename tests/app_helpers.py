"""Helpers for the AppTest page tests: open a page with a given current model, run without
exceptions, and read back the figures, texts and values a page drew."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from app_pages import common

APP = str(Path(__file__).resolve().parents[1] / "app.py")
FIRST_RUN_TIMEOUT_S = 60  # the first run imports torch and builds the default model


def open_page(page: str, model=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=FIRST_RUN_TIMEOUT_S).run()
    if model is not None:
        at.session_state[common.CURRENT_MODEL] = model
    at.switch_page(f"app_pages/{page}.py")
    return run(at)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figure(at: AppTest, key: str) -> dict:
    """The Plotly figure drawn with widget key ``key``."""
    found = [chart for chart in at.get("plotly_chart") if chart.proto.id.endswith(f"-{key}")]  # "$$ID-<hash>-<key>"
    assert found, f"no figure with key {key}; ids: {[c.proto.id for c in at.get('plotly_chart')]}"
    return json.loads(found[0].proto.spec)


def values(encoded) -> np.ndarray:
    """A figure's array as Plotly sends it: a list, or {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(encoded, dict) and "bdata" in encoded:
        flat = np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=np.dtype(encoded["dtype"]))
        shape = encoded.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(encoded, dtype=float)


def has_figure(at: AppTest, key: str) -> bool:
    return any(chart.proto.id.endswith(f"-{key}") for chart in at.get("plotly_chart"))


def texts(elements) -> list[str]:
    return [e.value for e in elements]
