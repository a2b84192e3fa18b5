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


def test_known_hub_locations_match_open_clip():
    import open_clip
    from open_clip.pretrained import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    assert (weights.HF_SAFE_WEIGHTS_NAME, weights.HF_WEIGHTS_NAME) == (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)
    for (name, tag), hub in weights.KNOWN_HUB.items():
        assert open_clip.get_pretrained_cfg(name, tag).get("hf_hub") == hub, (name, tag)
    from clipscape.models.encoder import DEFAULT_MODEL, DEFAULT_PRETRAINED

    assert (DEFAULT_MODEL, DEFAULT_PRETRAINED) in weights.KNOWN_HUB


OFFLINE_DEFAULT_MODEL = """
import sys
from clipscape.models.encoder import ModelSpec, load_encoder
from clipscape.models.weights import ModelUnavailable
try:
    load_encoder(ModelSpec.parse(None), device="cpu")
except ModelUnavailable as e:
    print("unavailable:", e)
print(sorted(m for m in ("torch", "open_clip") if m in sys.modules))
"""


def test_offline_default_model_is_refused_before_torch_is_imported(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("HTTPS_PROXY", "https_proxy", "HF_HOME")}
    env.update(HF_HUB_CACHE=str(tmp_path), HF_ENDPOINT="https://hub.clipscape-test.invalid", HF_HUB_OFFLINE="")
    out = subprocess.run([sys.executable, "-c", OFFLINE_DEFAULT_MODEL], capture_output=True, text=True, env=env,
                         timeout=60, check=True).stdout.splitlines()
    assert out[0].startswith("unavailable: model ViT-B-32/laion2b_s34b_b79k is not downloaded yet")
    assert out[-1] == "[]"  # was: ['open_clip', 'torch'], 4 s of imports before the 0.01 s check


def test_a_cached_known_model_resolves_without_open_clip(tmp_path, monkeypatch):
    snapshot = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / weights.HF_SAFE_WEIGHTS_NAME).write_bytes(b"weights")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    monkeypatch.setattr(weights, "pretrained_config", None)  # would raise if open_clip's table were asked
    path = weights.resolve("ViT-B-32", "laion2b_s34b_b79k", cache_dir=str(tmp_path))
    assert path == snapshot / weights.HF_SAFE_WEIGHTS_NAME
