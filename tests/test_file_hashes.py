"""models/file_hashes.py: a weights file is hashed once, again only when it changes."""
from __future__ import annotations

import hashlib
import os

import pytest
from clipscape.models import file_hashes
from clipscape.models.file_hashes import HASHES_NAME, cached_sha256


@pytest.fixture
def reads(monkeypatch):
    """The paths file_sha256 actually read, in order."""
    seen = []
    real = file_hashes.file_sha256

    def counting(path, *args, **kwargs):
        seen.append(os.fspath(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(file_hashes, "file_sha256", counting)
    return seen


def test_hash_is_read_once_and_is_the_files(tmp_path, reads):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"w" * 10_000)
    expected = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert cached_sha256(weights, tmp_path / "cache") == expected
    assert cached_sha256(weights, tmp_path / "cache") == expected
    assert reads == [str(weights)]  # was: hashed on every run (600 MB for ViT-B-32)
    assert (tmp_path / "cache" / HASHES_NAME).is_file()


def test_a_changed_file_is_hashed_again_even_with_its_old_size_and_mtime(tmp_path, reads):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * 1000)
    cached_sha256(weights, tmp_path)
    before = weights.stat()
    weights.write_bytes(b"b" * 1000)  # same size …
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))  # … and mtime set back; ctime moves
    assert cached_sha256(weights, tmp_path) == hashlib.sha256(b"b" * 1000).hexdigest()
    assert len(reads) == 2


def test_an_unwritable_or_garbled_record_only_means_hashing_again(tmp_path, reads):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"x")
    (tmp_path / "garbled").mkdir()
    (tmp_path / "garbled" / HASHES_NAME).write_text("{not json")
    assert cached_sha256(weights, tmp_path / "garbled") == hashlib.sha256(b"x").hexdigest()
    (tmp_path / "a-file").write_text("")
    assert cached_sha256(weights, tmp_path / "a-file") == hashlib.sha256(b"x").hexdigest()  # cannot write there
    assert len(reads) == 2


def test_local_dir_model_identity_uses_the_cached_hash(demo_encoder, monkeypatch, reads):
    from clipscape.models.encoder import ModelSpec, locate

    first = locate(ModelSpec.parse("demo")).identity
    second = locate(ModelSpec.parse("demo")).identity
    assert first == second == {"source": "local-dir", "weights_sha256": demo_encoder.identity["weights_sha256"]}
    assert len(reads) == 1
