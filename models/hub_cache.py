"""Is the default hub model already downloaded? Asked at start-up, so it must not import torch.

Asking open_clip where ``ViT-B-32`` / ``laion2b_s34b_b79k`` comes from imports torch (seconds);
the answer is fixed, so it is written here and tests/test_first_run.py checks it against
open_clip's own record and models.weights' file names. The lookup then goes to the Hugging Face
cache the same way models.weights does (``try_to_load_from_cache``), so "cached" here means
models.weights.resolve will not download.
"""
from __future__ import annotations

from clipscape.models.encoder import DEFAULT_MODEL, DEFAULT_PRETRAINED

DEFAULT_HF_REPO = "laion/CLIP-ViT-B-32-laion2B-s34B-b79K"   # open_clip: hf_hub "laion/CLIP-ViT-B-32-laion2B-s34B-b79K/"
DEFAULT_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")  # as models.weights looks
DEFAULT_DOWNLOAD_MB = 605   # fp32 weights; the model picker's catalogue says the same


def default_model_cached(cache_dir: str | None = None) -> bool:
    """True when the default model's weights are in the Hugging Face cache (no download needed)."""
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(DEFAULT_HF_REPO, name, cache_dir=cache_dir), str)
               for name in DEFAULT_WEIGHT_FILES)


__all__ = ["DEFAULT_MODEL", "DEFAULT_PRETRAINED", "DEFAULT_HF_REPO", "DEFAULT_WEIGHT_FILES",
           "DEFAULT_DOWNLOAD_MB", "default_model_cached"]
