"""Without a route to the Hugging Face hub, dd-run switches the libraries to their local cache at once instead
of letting every file request retry with backoff (close to a minute before a tokenizer's load fails)."""

from __future__ import annotations

import socket
from contextlib import contextmanager

import datasets.config
import pytest
from huggingface_hub import constants

from dd_runner.data.hub import cache_only_when_hub_unreachable


@pytest.fixture
def probe(monkeypatch):
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    cache_only_when_hub_unreachable.cache_clear()
    yield monkeypatch
    cache_only_when_hub_unreachable.cache_clear()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed: connections are refused


@contextmanager
def listening_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_an_unreachable_hub_switches_both_libraries_to_the_cache(probe, caplog):
    probe.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with caplog.at_level("INFO", logger="dd_runner.data.hub"):
        assert cache_only_when_hub_unreachable() is True
    assert constants.is_offline_mode() and datasets.config.HF_HUB_OFFLINE
    assert "127.0.0.1 is unreachable (ConnectionRefusedError)" in caplog.text


def test_a_reachable_hub_is_left_online(probe):
    with listening_port() as hub:
        probe.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{hub}")
        assert cache_only_when_hub_unreachable() is False
    assert not constants.is_offline_mode() and not datasets.config.HF_HUB_OFFLINE


def test_behind_a_proxy_the_proxy_is_probed(probe, caplog):
    with listening_port() as hub:  # the hub itself is reachable; the proxy the libraries go through is not
        probe.setattr(constants, "ENDPOINT", f"http://localhost:{hub}")
        probe.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
        with caplog.at_level("INFO", logger="dd_runner.data.hub"):
            assert cache_only_when_hub_unreachable() is True
    assert constants.is_offline_mode() and "the proxy 127.0.0.1:" in caplog.text


def test_a_reachable_proxy_is_left_to_the_libraries(probe):
    with listening_port() as proxy:
        probe.setattr(constants, "ENDPOINT", f"http://localhost:{closed_port()}")
        probe.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy}")
        assert cache_only_when_hub_unreachable() is False
    assert not constants.is_offline_mode()


def test_only_a_hub_name_checks_the_hub(probe, tmp_path):
    from dd_runner.data.hub import quiet_hub

    probe.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with quiet_hub(tmp_path):  # a local folder (a model, a tokenizer, an image folder): no probe, no log line
        pass
    with quiet_hub():
        pass
    assert not constants.is_offline_mode() and cache_only_when_hub_unreachable.cache_info().misses == 0
    with quiet_hub("distilbert-base-uncased"):
        assert constants.is_offline_mode()
