"""The model is built only when something must be encoded (models/lazy_encoder.py; issue 8, item 7)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clipscape.models.encoder import ModelSpec
from clipscape.models.lazy_encoder import LazyEncoder, model_alias, open_encoder
from clipscape.models.encoder import locate
from clipscape.models.shapes_world import write_folder
from clipscape.models.store import EmbeddingStore
from clipscape.models.weights import ModelUnavailable

REPO = Path(__file__).resolve().parents[1]

# Runs the command line, then says which heavy modules it imported.
RUN = """
import json, sys
from clipscape.models.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "imported": [m for m in ("torch", "open_clip") if m in sys.modules]}))
"""


def cli_imports(*argv) -> tuple[int, list[str], str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", RUN, *map(str, argv)], capture_output=True, text=True, env=env,
                          cwd=REPO, check=False)
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    return last["code"], last["imported"], proc.stdout[:proc.stdout.rstrip().rfind("\n") + 1]


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "photos"
    write_folder(folder, 12, seed=5, size=96)
    return folder


def test_search_of_a_cached_folder_for_a_caption_seen_before_imports_no_torch(folder, tmp_path):
    common = ["--model", "demo", "--device", "cpu", "--cache-dir", tmp_path / "c", "--quiet"]
    assert cli_imports("encode", folder, *common)[:2] == (0, ["torch", "open_clip"])  # built: the record is made
    code, imported, first = cli_imports("search", folder, "a red circle", *common)
    assert code == 0 and imported == ["torch", "open_clip"]  # a new caption needs the text tower
    code, imported, again = cli_imports("search", folder, "a red circle", *common)
    assert code == 0 and imported == []  # images and caption from the cache: no model at all
    assert again == first  # the same ranking, to the digit
    code, imported, _ = cli_imports("search", folder, "a blue star", *common)
    assert code == 0 and imported == ["torch", "open_clip"]
    code, imported, out = cli_imports("search", folder, "a red circle", *common, "--json")
    assert code == 0 and json.loads(out)["device"] == "cpu"  # JSON still names the device


def test_a_lazy_encoder_builds_the_model_when_an_image_needs_encoding(folder, tmp_path, demo_encoder):
    from clipscape.models.indexer import index, run

    spec = ModelSpec.parse("demo")
    with EmbeddingStore(tmp_path / "c") as store:
        first = open_encoder(spec, store, device="cpu")
        assert not isinstance(first, LazyEncoder)
        run(index(folder, first, store))
        write_folder(tmp_path / "more", 3, seed=9, size=96)
        for p in (tmp_path / "more").iterdir():
            p.rename(folder / f"new_{p.name}")
        lazy = open_encoder(spec, store, device="cpu")
        assert isinstance(lazy, LazyEncoder) and not lazy.built
        assert (lazy.key, lazy.identity, lazy.dim) == (first.key, first.identity, first.dim)
        collection = run(index(folder, lazy, store))
        assert lazy.built and len(collection) == 15
        np.testing.assert_allclose(collection.embeddings, run(index(folder, demo_encoder, store)).embeddings,
                                   atol=1e-6)


def test_a_record_that_no_longer_matches_the_model_is_replaced_with_a_clear_error(tmp_path):
    spec = ModelSpec.parse("demo")
    with EmbeddingStore(tmp_path / "c") as store:
        real = open_encoder(spec, store, device="cpu")
        alias = model_alias(locate(spec))
        store.add_alias(alias, store.model_id("some-other-key", {"source": "elsewhere"}, real.dim))
        wrong = open_encoder(spec, store, device="cpu")
        assert isinstance(wrong, LazyEncoder) and wrong.key == "some-other-key"
        with pytest.raises(ModelUnavailable, match="run the command again"):
            wrong.encode_texts(["a red circle"])
        again = open_encoder(spec, store, device="cpu")
        assert isinstance(again, LazyEncoder) and again.key == real.key


def test_the_alias_changes_with_the_weights_and_the_config(tmp_path):
    import shutil

    from clipscape.models.encoder import DEMO_DIR

    shutil.copytree(DEMO_DIR, tmp_path / "m")
    spec = ModelSpec.parse(f"local-dir:{tmp_path / 'm'}")
    before = model_alias(locate(spec))
    config = tmp_path / "m" / "open_clip_config.json"
    config.write_text(config.read_text().replace("}", ' }', 1))
    after_config = model_alias(locate(spec))
    with open(tmp_path / "m" / "open_clip_model.safetensors", "ab") as weights:
        weights.write(b" ")
    assert len({before, after_config, model_alias(locate(spec))}) == 3


def test_the_weights_hash_record_goes_to_the_cache_dir_given(tmp_path, monkeypatch):
    from clipscape.models.file_hashes import HASHES_NAME

    monkeypatch.setenv("CLIPSCAPE_CACHE_DIR", str(tmp_path / "default"))
    with EmbeddingStore(tmp_path / "given") as store:
        open_encoder(ModelSpec.parse("demo"), store, device="cpu")
    assert (tmp_path / "given" / HASHES_NAME).is_file() and not (tmp_path / "default").exists()
