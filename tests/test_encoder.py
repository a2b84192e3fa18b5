"""Model loading: the demo, local folders, checkpoint files, the hub path offline, devices."""
from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from safetensors.torch import load_file, save_file

from clipscape.models import weights
from clipscape.models.encoder import DEMO_DIR, ModelSpec, load_encoder, pick_device
from clipscape.models.weights import ModelUnavailable


def test_spec_defaults():
    assert ModelSpec.parse(None) == ModelSpec("ViT-B-32", "laion2b_s34b_b79k")
    assert ModelSpec.parse("demo") == ModelSpec("demo", None)
    assert ModelSpec.parse("local-dir:/x", "ignored") == ModelSpec("local-dir:/x", None)
    assert ModelSpec.parse("RN50").pretrained in open_clip.list_pretrained_tags_by_model("RN50")


def test_hub_model_offline_fails_fast_with_a_fix(tmp_path):
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as err:
        load_encoder(ModelSpec.parse("ViT-B-32"), device="cpu", cache_dir=str(tmp_path / "hf"))
    assert time.monotonic() - started < 5
    message = str(err.value)
    assert "ViT-B-32/laion2b_s34b_b79k" in message and "--model demo" in message


def test_hub_weights_already_cached_are_used_without_network(tmp_path):
    """A file in the Hugging Face cache layout is found offline (no probe, no download)."""
    repo = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "open_clip_model.safetensors").write_bytes(b"stand-in")
    path = weights.resolve("ViT-B-32", "laion2b_s34b_b79k", cache_dir=str(tmp_path))
    assert path == snapshot / "open_clip_model.safetensors"


def test_unknown_model_and_tag_name_the_alternatives():
    with pytest.raises(ModelUnavailable, match="ViT-B-32"):
        load_encoder(ModelSpec("ViT-Nope", "x"), device="cpu")
    with pytest.raises(ModelUnavailable, match="laion2b_s34b_b79k"):
        load_encoder(ModelSpec("ViT-B-32", "no_such_tag"), device="cpu")


def test_devices():
    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelUnavailable, match="CUDA"):
            pick_device("cuda")
    with pytest.raises(ValueError):
        pick_device("tpu")


def test_demo_model_identity_and_texts(demo_encoder):
    assert demo_encoder.identity["source"] == "local-dir"
    assert len(demo_encoder.identity["weights_sha256"]) == 64
    assert demo_encoder.identity["preprocess"]["size"]
    texts = demo_encoder.encode_texts(["a red circle", "a blue square"])
    assert texts.shape == (2, demo_encoder.dim)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)


def test_one_caption_runs_on_one_torch_thread_and_the_setting_comes_back(demo_encoder, monkeypatch):
    """A caption's tiny ops on two threads stall when the window's threads hold a core; a
    prompt ensemble (many texts) keeps every thread. Same vectors either way."""
    import torch

    torch.set_num_threads(2)
    seen = []
    real = demo_encoder.model.encode_text
    monkeypatch.setattr(demo_encoder.model, "encode_text",
                        lambda tokens: (seen.append(torch.get_num_threads()), real(tokens))[1])
    one = demo_encoder.encode_texts(["a red circle"])
    two = demo_encoder.encode_texts(["a red circle", "a blue square"])
    assert seen == [1, 2] and torch.get_num_threads() == 2
    assert np.allclose(one[0], two[0], atol=1e-5)


def _arch_config(name: str, tmp_path: Path) -> None:
    """Register the demo architecture under ``name`` the way open_clip's own tests do."""
    cfg = json.loads((DEMO_DIR / "open_clip_config.json").read_text())
    (tmp_path / f"{name}.json").write_text(json.dumps(cfg["model_cfg"]))
    open_clip.add_model_config(tmp_path / f"{name}.json")


def test_architecture_plus_checkpoint_files(tmp_path, demo_encoder):
    _arch_config("clipscape-test-arch", tmp_path)
    state = load_file(DEMO_DIR / "open_clip_model.safetensors")
    save_file(state, tmp_path / "w.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pt")
    texts = ["a green star on a dotted background"]
    for ckpt in ("w.safetensors", "w.pt"):
        enc = load_encoder(ModelSpec("clipscape-test-arch", str(tmp_path / ckpt)), device="cpu")
        assert enc.identity["source"] == "file"
        assert np.allclose(enc.encode_texts(texts), demo_encoder.encode_texts(texts), atol=1e-5)


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/clipscape-pwned"),))


def test_pickled_code_in_a_checkpoint_is_refused(tmp_path):
    _arch_config("clipscape-test-arch2", tmp_path)
    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"state_dict": _Exploit()}))
    Path("/tmp/clipscape-pwned").unlink(missing_ok=True)
    with pytest.raises(ModelUnavailable):
        load_encoder(ModelSpec("clipscape-test-arch2", str(bad)), device="cpu")
    assert not Path("/tmp/clipscape-pwned").exists()


def test_missing_local_dir_and_checkpoint(tmp_path):
    with pytest.raises(ModelUnavailable, match="open_clip_config.json"):
        load_encoder(ModelSpec.parse(f"local-dir:{tmp_path}"), device="cpu")
    with pytest.raises(ModelUnavailable, match="not found"):
        load_encoder(ModelSpec("ViT-B-32", str(tmp_path / "missing.safetensors")), device="cpu")


def test_model_built_without_random_init_equals_the_checkpoint(demo_encoder):
    import open_clip
    import torch.nn.init

    from clipscape.models.encoder import DEMO_DIR, _no_random_init

    before = torch.nn.init.normal_
    plain = open_clip.create_model_and_transforms(f"local-dir:{DEMO_DIR}", weights_only=True)[0].state_dict()
    assert set(plain) == set(demo_encoder.model.state_dict())
    for name, tensor in demo_encoder.model.state_dict().items():  # load_encoder built it without the init
        assert torch.equal(tensor, plain[name]), name
    with pytest.raises(RuntimeError), _no_random_init():
        raise RuntimeError("a failing build")
    assert torch.nn.init.normal_ is before  # restored, also after a failure
