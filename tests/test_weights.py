"""models/weights.py: where the hub probe dials, and what it says when it cannot."""
from __future__ import annotations

import socket

import pytest
from clipscape.models import weights
from clipscape.models.weights import ModelUnavailable, endpoint_address


@pytest.fixture
def listener():
    """A local TCP server on a free port (what a hub mirror looks like to a probe)."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("url, expected", [
    ("https://huggingface.co", ("huggingface.co", 443, "https")),
    ("http://mirror.example", ("mirror.example", 80, "http")),
    ("http://mirror.example:8080/", ("mirror.example", 8080, "http")),
    ("https://[::1]:8443", ("::1", 8443, "https")),
    ("mirror.example:81", ("mirror.example", 81, "https")),
])
def test_endpoint_address(url, expected):
    assert endpoint_address(url) == expected


def test_bad_port_is_a_clear_error():
    with pytest.raises(ModelUnavailable, match="bad port"):
        endpoint_address("http://mirror:99999")


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_probe_dials_the_endpoints_own_port(listener, scheme, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", f"{scheme}://127.0.0.1:{listener}")
    weights._require_network(f"{scheme}://127.0.0.1:{listener}", "ViT-B-32", "tag")  # was: dialled 443


def test_unreachable_endpoint_names_host_and_port(listener):
    port = listener
    with pytest.raises(ModelUnavailable, match=f"127.0.0.1:{port + 1 if port < 65535 else 1}"):
        weights._require_network(f"http://127.0.0.1:{port + 1 if port < 65535 else 1}", "ViT-B-32", "tag")


def test_plain_http_uses_http_proxy_not_https_proxy(listener, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{listener}")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")  # nothing listens on port 1
    assert weights.probe("mirror.invalid", 80, scheme="http") is None
    assert weights.probe("mirror.invalid", 443, scheme="https") is not None
