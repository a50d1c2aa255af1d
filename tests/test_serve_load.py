"""bench/serve_load.py's protocol client against a real server: it opens a page through
Streamlit's websocket protocol (no browser) and gets the page's elements and its
script-finished message, and a rerun is answered with references to the messages it holds."""
from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from bench.serve_load import Session, rss_mb, start_server, stop_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("glassbox_home")
    process, url = start_server(home, tmp_path_factory.mktemp("log") / "server.log", [])
    yield process, url
    stop_server(process)


def test_the_client_opens_feature_maps_and_reruns_it(server):
    process, url = server

    async def visit():
        session = Session(url)
        await session.open()
        try:
            first = await session.run_page("inspect_cnn")
            opened = dict(session.elements), session.page_hash
            again = await session.run_page()  # a rerun of the open page, as a widget change makes
            return first, opened, again, dict(session.elements), session.references, session
        finally:
            await session.close()

    # On a thread of its own: Playwright's sync API (the browser tests, earlier in the same
    # pytest run) keeps an event loop running on the main thread, where asyncio.run refuses.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        first, (opened, page_hash), again, rerun, references, session = pool.submit(asyncio.run, visit()).result()
    assert first > 0 and again > 0  # both runs ended with script_finished
    assert session.exceptions == []
    assert page_hash == session.page_hashes["inspect_cnn"]  # the navigation message named the page opened
    assert {"inspect_cnn", "inspect_attention", "attributions", "train"} <= set(session.page_hashes)
    # Feature maps of the default digits-cnn: the prediction, conv 1's filters, maps before and
    # after the ReLU, the receptive field and the arithmetic; the picture and what the model sees.
    assert opened.get("plotly_chart") == 6 and opened.get("imgs") == 2
    # On the rerun the large figures the session already holds come as references to them.
    assert references >= 1 and rerun.get("plotly_chart", 0) + references >= 6
    assert rss_mb(process.pid) > 50  # the server's memory, read from /proc
