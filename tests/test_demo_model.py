"""The bundled demo model has really learned the shapes world, and the fast path sees what it sees.

Measured through the public API (index → classify / search), on images generated fresh with a
seed the training never used, written as JPEGs and read back through the decode pool.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clipscape.models.search import search
from clipscape.models.shapes_world import COLOURS, SHAPES, write_folder
from clipscape.models.zeroshot import zero_shot

from conftest import index_folder


@pytest.fixture(scope="module")
def held_out(demo_encoder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("held_out")
    truth = {str(p): scene for p, scene in write_folder(folder, 480, seed=20261128, size=256)}
    collection, progress = index_folder(folder, demo_encoder, tmp_path_factory.mktemp("cache"))
    assert progress.embedded == 480 and not progress.skipped
    return collection, [truth[p] for p in collection.paths]


def test_zero_shot_shapes(held_out, demo_encoder):
    collection, scenes = held_out
    result = zero_shot(collection.embeddings, demo_encoder, list(SHAPES))
    accuracy = np.mean([label == s.shape for label, s in zip(result.labels, scenes)])
    assert accuracy >= 0.90, f"shape zero-shot accuracy {accuracy:.3f}"


def test_zero_shot_colours(held_out, demo_encoder):
    collection, scenes = held_out
    result = zero_shot(collection.embeddings, demo_encoder, list(COLOURS))
    accuracy = np.mean([label == s.colour for label, s in zip(result.labels, scenes)])
    assert accuracy >= 0.95, f"colour zero-shot accuracy {accuracy:.3f}"


def test_caption_search_precision_at_10(held_out, demo_encoder):
    collection, scenes = held_out
    by_path = dict(zip(collection.paths, scenes))
    precisions = []
    for colour in COLOURS:
        for shape in SHAPES:
            hits = search(collection, demo_encoder, f"a {colour} {shape}", top=10)
            precisions.append(np.mean([(by_path[h.path].colour, by_path[h.path].shape) == (colour, shape)
                                       for h in hits]))
    assert np.mean(precisions) >= 0.8, f"mean precision@10 {np.mean(precisions):.3f}"


def test_fast_path_matches_open_clip_reference(held_out, demo_encoder):
    """Draft decoding + pooled preprocessing ≈ open_clip's own encode_image(preprocess(open))."""
    collection, _ = held_out
    rows = range(0, len(collection), 12)
    with torch.inference_mode():
        batch = torch.stack([demo_encoder.preprocess(Image.open(collection.paths[i]).convert("RGB"))
                             for i in rows])
        reference = demo_encoder.model.encode_image(batch)
        reference = (reference / reference.norm(dim=-1, keepdim=True)).numpy()
    cosines = np.sum(reference * collection.embeddings[list(rows)], axis=1)
    assert cosines.min() >= 0.99, f"lowest cosine {cosines.min():.4f}"
