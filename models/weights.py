"""Find the weights file behind an open_clip model name + pretrained tag, downloading it if needed.

open_clip downloads on its own, but with no network its Hugging Face client retries for about a
minute before failing, and its message does not say what to do. Here the local cache is asked
first, then the hub is probed with a short timeout, so an offline user gets a clear error in a
few seconds, and a user who is online gets the ordinary download (with a progress bar) into the
same cache open_clip uses, so weights fetched by other open_clip tools are reused.
"""
from __future__ import annotations

import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any

PROBE_TIMEOUT_S = 3.0
HF_HUB_HOST = "huggingface.co"
# open_clip.pretrained's names for a hub repository's default files (importing it imports torch).
HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"
HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"

# Where open_clip downloads the models the window's picker offers, so that for these the question
# "cached, downloadable, or neither?" is answered before torch and open_clip are imported (about
# 4 s): an offline user hears within a second. tests/test_weights.py checks every entry against
# open_clip's own table, so an open_clip upgrade that moves one fails the tests, not a user.
# Pairs not listed here are looked up in open_clip as before.
KNOWN_HUB = {
    ("ViT-B-32", "laion2b_s34b_b79k"): "laion/CLIP-ViT-B-32-laion2B-s34B-b79K/",
    ("ViT-B-32", "openai"): "timm/vit_base_patch32_clip_224.openai/",
    ("ViT-B-16", "laion2b_s34b_b88k"): "laion/CLIP-ViT-B-16-laion2B-s34B-b88K/",
    ("ViT-L-14", "laion2b_s32b_b82k"): "laion/CLIP-ViT-L-14-laion2B-s32B-b82K/",
    ("ViT-H-14", "laion2b_s32b_b79k"): "laion/CLIP-ViT-H-14-laion2B-s32B-b79K/",
    ("MobileCLIP-S2", "datacompdr"): "apple/MobileCLIP-S2-OpenCLIP/",
}


class ModelUnavailable(RuntimeError):
    """The model's weights cannot be had (offline and not cached, unknown tag, missing file)."""


def pretrained_config(name: str, tag: str) -> dict[str, Any]:
    """open_clip's record for ``name``/``tag`` (where it downloads from, preprocessing); errors name the valid tags."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(name, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(name)
        hint = f"known tags for {name}: {', '.join(tags)}" if tags else \
            f"{name!r} has no downloadable weights in open_clip"
        raise ModelUnavailable(f"unknown pretrained tag {tag!r} for model {name!r} ({hint})")
    return cfg


def resolve(name: str, tag: str, cache_dir: str | None = None, tqdm_class: Any = None) -> Path:
    """Return a local file with the weights for ``name``/``tag``, downloading them if not cached.

    Raises ModelUnavailable within about PROBE_TIMEOUT_S when the weights are not cached and the
    download host cannot be reached. For the pairs in KNOWN_HUB this imports neither torch nor
    open_clip.
    """
    known = KNOWN_HUB.get((name, tag))
    if known is not None:
        return _resolve_hf(known, name, tag, cache_dir, tqdm_class)
    cfg = pretrained_config(name, tag)
    if cfg.get("file"):
        return Path(cfg["file"])
    if cfg.get("hf_hub"):
        return _resolve_hf(cfg["hf_hub"], name, tag, cache_dir, tqdm_class)
    if cfg.get("url"):
        return _resolve_url(cfg["url"], name, tag, cache_dir)
    raise ModelUnavailable(f"open_clip lists no download location for {name}/{tag}")


def _candidates(hf_hub: str) -> tuple[str, list[str]]:
    """open_clip's 'org/repo/file' form (a trailing slash means the default file), safetensors first.

    Mirrors open_clip.pretrained._get_safe_alternatives, so we look for the same files it would.
    """
    repo, filename = os.path.split(hf_hub)
    filename = filename or HF_WEIGHTS_NAME
    if filename == HF_WEIGHTS_NAME:
        return repo, [HF_SAFE_WEIGHTS_NAME, filename]
    if filename.endswith((".bin", ".pth")):
        return repo, [filename[:-4] + ".safetensors", filename]
    return repo, [filename]


def _resolve_hf(hf_hub: str, name: str, tag: str, cache_dir: str | None, tqdm_class: Any) -> Path:
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    repo, names = _candidates(hf_hub)
    for filename in names:
        hit = try_to_load_from_cache(repo, filename, cache_dir=cache_dir)
        if isinstance(hit, str):
            return Path(hit)
    _require_network(os.environ.get("HF_ENDPOINT") or f"https://{HF_HUB_HOST}", name, tag)
    last_error: Exception | None = None
    for filename in names:
        try:
            return Path(hf_hub_download(repo, filename, cache_dir=cache_dir, tqdm_class=tqdm_class,
                                        library_name="clipscape"))
        except Exception as e:  # the safetensors twin may not exist; fall through to the next name
            last_error = e
    raise ModelUnavailable(f"could not download {name}/{tag} from {repo}: {last_error}")


def _resolve_url(url: str, name: str, tag: str, cache_dir: str | None) -> Path:
    import open_clip

    target = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
    if target.is_file():
        return target
    _require_network(url, name, tag)
    return Path(open_clip.download_pretrained_from_url(url, cache_dir=cache_dir))


def endpoint_address(url: str) -> tuple[str, int, str]:
    """(host, port, scheme) a download from ``url`` connects to: its own port, else 80 for http, 443 else.

    A mirror given as HF_ENDPOINT=http://mirror:8080 is dialled there, not at port 443.
    """
    parsed = urllib.parse.urlparse(url if "//" in url else f"https://{url}")
    scheme = (parsed.scheme or "https").lower()
    try:
        port = parsed.port
    except ValueError:
        raise ModelUnavailable(f"the download address {url!r} has a bad port number") from None
    return parsed.hostname or HF_HUB_HOST, port or (80 if scheme == "http" else 443), scheme


def _require_network(url: str, name: str, tag: str) -> None:
    """Return if the download host of ``url`` answers; ModelUnavailable with a fix-it message if not."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        reason = "HF_HUB_OFFLINE is set"
    else:
        host, port, scheme = endpoint_address(url)
        reason = probe(host, port, scheme=scheme)
        if reason is None:
            return
    raise ModelUnavailable(
        f"model {name}/{tag} is not downloaded yet and cannot be fetched ({reason}). "
        f"Connect to the internet once to download it, or use a model on disk: "
        f"--model local-dir:FOLDER, --model ARCH --pretrained FILE.safetensors, or --model demo.")


def probe(host: str, port: int = 443, timeout: float = PROBE_TIMEOUT_S, scheme: str = "https") -> str | None:
    """None if ``host``:``port`` (or the proxy configured for ``scheme``) accepts a TCP connection, else the reason."""
    names = ("HTTP_PROXY", "http_proxy") if scheme == "http" else ("HTTPS_PROXY", "https_proxy")
    proxy = next((os.environ[n] for n in names if os.environ.get(n)), None)
    if proxy:
        parsed = urllib.parse.urlparse(proxy if "//" in proxy else f"http://{proxy}")
        host, port = parsed.hostname or host, parsed.port or 8080
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"cannot resolve {host}: no network?"
    except OSError as e:
        return f"cannot connect to {host}:{port}: {e.strerror or e}"
