"""Tests for models.search and models.zeroshot on hand-made unit embeddings (no model), plus one
check of the prompt-ensemble class embeddings with the demo model."""
from __future__ import annotations

import numpy as np
import pytest

from clipscape.models.collection import Collection
from clipscape.models.search import Hit, cosine_scores, search, similar, text_scores, top_hits
from clipscape.models.zeroshot import (SINGLE_TEMPLATE, UNKNOWN, Classification, class_embeddings, classify,
                             ensemble_templates, parse_classes)


def unit(*rows) -> np.ndarray:
    x = np.asarray(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# Five images in 3-D: a and d are the same direction (a tie), e is the opposite of a.
PATHS = ["/p/a.jpg", "/p/b.jpg", "/p/c.jpg", "/p/d.jpg", "/p/e.jpg"]
EMBEDDINGS = unit([1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 0, 0], [-1, 0, 0])


@pytest.fixture
def collection() -> Collection:
    return Collection(list(PATHS), EMBEDDINGS.copy(), "test")


class FakeEncoder:
    """Stands in for models.encoder.Encoder: known captions map to fixed unit vectors."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors
        self.calls: list[list[str]] = []

    def encode_texts(self, texts):
        self.calls.append(list(texts))
        return unit(*[self.vectors[t] for t in texts])


# --- search -----------------------------------------------------------------------------------

def test_cosine_scores_are_dot_products_of_unit_vectors():
    query = unit([1, 1, 0])
    scores = cosine_scores(EMBEDDINGS, query)
    assert scores.dtype == np.float32 and scores.shape == (5,)
    h = 1 / np.sqrt(2)
    np.testing.assert_allclose(scores, [h, h, 1.0, h, -h], atol=1e-6)
    # a 1×D row or a float64 query gives the same scores
    np.testing.assert_allclose(cosine_scores(EMBEDDINGS, query[None, :]), scores)
    np.testing.assert_allclose(cosine_scores(EMBEDDINGS, query.astype(np.float64)), scores)
    assert cosine_scores(EMBEDDINGS[:0], query).shape == (0,)


def test_top_hits_best_first_with_stable_ties(collection):
    scores = np.array([0.5, 0.9, 0.1, 0.9, 0.5], np.float32)
    hits = top_hits(collection, scores)
    assert [h.index for h in hits] == [1, 3, 0, 4, 2]  # ties (1,3) and (0,4) keep collection order
    assert hits[0] == Hit("/p/b.jpg", pytest.approx(0.9), 1)
    assert [h.path for h in hits] == [PATHS[i] for i in (1, 3, 0, 4, 2)]
    assert all(isinstance(h.score, float) and isinstance(h.index, int) for h in hits)


def test_top_hits_limits_and_exclusion(collection):
    scores = np.array([0.5, 0.9, 0.1, 0.8, 0.2], np.float32)
    assert [h.index for h in top_hits(collection, scores, top=2)] == [1, 3]
    assert [h.index for h in top_hits(collection, scores, top=50)] == [1, 3, 0, 4, 2]  # top > N
    assert top_hits(collection, scores, top=0) == []
    # the excluded row is dropped before counting, so top=2 still gives two hits
    assert [h.index for h in top_hits(collection, scores, top=2, exclude=1)] == [3, 0]
    assert [h.index for h in top_hits(collection, scores, exclude=2)] == [1, 3, 0, 4]


def test_similar_leaves_out_the_query_and_ranks_by_cosine(collection):
    hits = similar(collection, 0)
    assert [h.index for h in hits] == [3, 2, 1, 4]  # d is a's twin, e its opposite
    assert 0 not in [h.index for h in hits]
    np.testing.assert_allclose([h.score for h in hits], [1.0, 1 / np.sqrt(2), 0.0, -1.0], atol=1e-6)
    assert [h.index for h in similar(collection, 3, top=1)] == [0]
    assert [h.index for h in similar(collection, 4, top=10)] == [1, 2, 0, 3]  # 0 and 3 tie at -1


def test_search_with_a_caption(collection):
    encoder = FakeEncoder({"up": [0, 1, 0], "right and up": [1, 1, 0]})
    hits = search(collection, encoder, "up", top=2)
    assert [h.path for h in hits] == ["/p/b.jpg", "/p/c.jpg"]
    np.testing.assert_allclose(text_scores(collection, encoder, "right and up"),
                               cosine_scores(EMBEDDINGS, unit([1, 1, 0])))
    calls = len(encoder.calls)
    with pytest.raises(ValueError, match="empty"):
        text_scores(collection, encoder, "   ")
    assert len(encoder.calls) == calls  # rejected before encoding anything


# --- zero-shot classify -----------------------------------------------------------------------

CLASSES = ["x", "y", "z"]
CLASS_EMBS = unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
IMAGES = unit([1, 0.1, 0], [0.2, 1, 0.1], [1, 1, 1], [0, 0.1, 1])  # x, y, a three-way tie, z


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_classify_probabilities_and_best_class():
    result = classify(IMAGES, CLASS_EMBS, 10.0, CLASSES)
    assert isinstance(result, Classification)
    assert result.probabilities.shape == (4, 3)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(result.probabilities, softmax(10.0 * IMAGES @ CLASS_EMBS.T), atol=1e-6)
    np.testing.assert_allclose(result.probabilities[2], [1 / 3] * 3, atol=1e-6)
    assert result.best.tolist() == [0, 1, 0, 2]  # the tie goes to the first class
    assert result.labels == ["x", "y", "x", "z"]
    assert result.counts() == {"x": 2, "y": 1, "z": 1, UNKNOWN: 0}
    np.testing.assert_allclose(result.confidence, result.probabilities.max(axis=1))


def test_classify_threshold_makes_unknown():
    plain = classify(IMAGES, CLASS_EMBS, 10.0, CLASSES)
    result = classify(IMAGES, CLASS_EMBS, 10.0, CLASSES, threshold=0.5)
    assert result.best.tolist() == [0, 1, -1, 2]  # the three-way tie has 1/3 < 0.5
    assert result.label(2) == UNKNOWN
    assert result.labels == ["x", "y", UNKNOWN, "z"]
    counts = result.counts()
    assert counts == {"x": 1, "y": 1, "z": 1, UNKNOWN: 1}
    assert list(counts)[-1] == UNKNOWN and sum(counts.values()) == 4
    np.testing.assert_array_equal(result.confidence, plain.confidence)  # still the top probability
    # exactly at the threshold counts as known; 1.0 leaves only certainties
    at = float(plain.confidence[0])
    assert classify(IMAGES, CLASS_EMBS, 10.0, CLASSES, threshold=at).best[0] == 0
    assert (classify(IMAGES, CLASS_EMBS, 10.0, CLASSES, threshold=1.0).best == -1).all()
    for bad in (-0.01, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            classify(IMAGES, CLASS_EMBS, 10.0, CLASSES, threshold=bad)


def test_a_class_named_unknown_keeps_its_count():
    names = ["x", "unknown", "z"]  # was: counts["unknown"] overwritten by the below-threshold count
    result = classify(IMAGES, CLASS_EMBS, 10.0, names, threshold=0.5)
    assert result.best.tolist() == [0, 1, -1, 2]
    assert result.unknown_label == "(unknown)"
    assert result.counts() == {"x": 1, "unknown": 1, "z": 1, "(unknown)": 1}
    assert result.labels == ["x", "unknown", "(unknown)", "z"] and result.label(2) == "(unknown)"
    assert classify(IMAGES, CLASS_EMBS, 10.0, CLASSES, threshold=0.5).unknown_label == UNKNOWN


def test_class_embeddings_report_progress(demo_encoder):
    seen = []
    class_embeddings(demo_encoder, [f"class {i}" for i in range(40)], ensemble=False,
                     progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (16, 40) and seen[-1] == (40, 40) and len(seen) == 3


def test_logit_scale_sharpens_probabilities():
    flat = classify(IMAGES, CLASS_EMBS, 0.0, CLASSES)
    np.testing.assert_allclose(flat.probabilities, 1 / 3, atol=1e-6)
    soft = classify(IMAGES, CLASS_EMBS, 1.0, CLASSES)
    sharp = classify(IMAGES, CLASS_EMBS, 100.0, CLASSES)
    clear = [0, 1, 3]  # the images with one nearest class
    assert (sharp.confidence[clear] > soft.confidence[clear] + 0.1).all()
    assert (sharp.confidence[clear] > 0.99).all()
    np.testing.assert_array_equal(sharp.best, soft.best)  # the ranking itself does not change
    huge = classify(IMAGES, CLASS_EMBS, 1e4, CLASSES)  # no overflow to nan
    assert np.isfinite(huge.probabilities).all()
    assert huge.best.tolist() == [0, 1, 0, 2]


def test_classify_no_images():
    result = classify(np.zeros((0, 3), np.float32), CLASS_EMBS, 10.0, CLASSES, threshold=0.5)
    assert result.probabilities.shape == (0, 3) and result.labels == []
    assert result.counts() == {"x": 0, "y": 0, "z": 0, UNKNOWN: 0}


@pytest.mark.parametrize("text, expected", [
    ("cat, dog,,car", ["cat", "dog", "car"]),
    ("cat\ndog\r\ncar\n", ["cat", "dog", "car"]),
    ("a red circle,\n  a blue  square ", ["a red circle", "a blue  square"]),
    ("cat,dog,cat, dog\ncat", ["cat", "dog"]),
    ("Cat,cat", ["Cat", "cat"]),
    ("", []),
    ("  , ,\n\n ,", []),
])
def test_parse_classes(text, expected):
    assert parse_classes(text) == expected


# --- class embeddings with the demo model -----------------------------------------------------

def test_class_embeddings_ensemble_and_single_template(demo_encoder):
    classes = ["red", "green", "blue"]
    ensemble = class_embeddings(demo_encoder, classes)
    single = class_embeddings(demo_encoder, classes, ensemble=False)
    for embs in (ensemble, single):
        assert embs.shape == (3, demo_encoder.dim)
        np.testing.assert_allclose(np.linalg.norm(embs, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(ensemble, single, atol=1e-3)
    # single: the one prompt's embedding; ensemble: the renormalised mean of all 80 prompts
    np.testing.assert_allclose(single, demo_encoder.encode_texts([SINGLE_TEMPLATE.format(c) for c in classes]),
                               atol=1e-5)
    templates = ensemble_templates()
    assert len(templates) == 80
    mean = demo_encoder.encode_texts([t("green") for t in templates]).mean(axis=0)
    np.testing.assert_allclose(ensemble[1], mean / np.linalg.norm(mean), atol=1e-5)
    with pytest.raises(ValueError):
        class_embeddings(demo_encoder, [])


def test_class_embeddings_check_stops_between_chunks(demo_encoder):
    from clipscape.models.zeroshot import PROMPT_CHUNK

    class Stop(Exception):
        pass

    calls = []

    def check():
        calls.append(1)
        if len(calls) == 3:
            raise Stop

    with pytest.raises(Stop):
        class_embeddings(demo_encoder, ["circle", "square"], check=check)
    assert len(calls) == 3 < 2 * 80 // PROMPT_CHUNK
    chunked = class_embeddings(demo_encoder, ["circle", "square"], check=lambda: None)
    assert np.allclose(chunked, class_embeddings(demo_encoder, ["circle", "square"]), atol=1e-6)


def test_cached_text_encoder_embeds_each_prompt_once_per_model(demo_encoder, tmp_path):
    from clipscape.models.store import EmbeddingStore
    from clipscape.models.zeroshot import CachedTextEncoder

    direct = class_embeddings(demo_encoder, ["circle", "star"])
    calls = []

    class Counting:
        key, identity, dim, logit_scale = (demo_encoder.key, demo_encoder.identity, demo_encoder.dim,
                                           demo_encoder.logit_scale)

        def encode_texts(self, texts):
            calls.append(len(texts))
            return demo_encoder.encode_texts(texts)

    with EmbeddingStore(tmp_path) as store:
        first = class_embeddings(CachedTextEncoder(Counting(), store), ["circle", "star"])
    with EmbeddingStore(tmp_path) as store:
        again = class_embeddings(CachedTextEncoder(Counting(), store), ["star", "circle"])
    assert sum(calls) == 160  # 80 prompts × 2 classes, all in the first session
    assert np.allclose(first, direct, atol=1e-6) and np.array_equal(again, first[::-1])


def test_head_ranked_begins_with_what_a_full_stable_sort_would_and_holds_every_row_once():
    """Both ways: the sampled threshold (which lets ~3k through) and, when it lets too few
    through, best_first; with ties, NaN and small collections."""
    from clipscape.models.search import head_ranked

    rng = np.random.default_rng(5)
    skewed = rng.normal(size=200_000).astype(np.float32)
    skewed[::64] = -5.0                                  # the sample sees only low scores: too many pass
    few = rng.normal(size=200_000).astype(np.float32)
    few[::64] = 9.0                                      # the sample sees only high ones: too few pass
    nan = rng.normal(size=100_000).astype(np.float32)
    nan[rng.integers(0, 100_000, 500)] = np.nan
    cases = [rng.normal(size=n).astype(np.float32) for n in (0, 1, 50, 300_000)]
    cases += [rng.integers(0, 4, 300_000).astype(np.float32), skewed, few, nan]
    for scores in cases:
        n = len(scores)
        full = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="stable")
        for k in (0, 1, 10, 2000, n):
            rank = head_ranked(scores, k)
            np.testing.assert_array_equal(np.sort(rank), np.arange(n))
            np.testing.assert_array_equal(rank[:min(k, n)], full[:min(k, n)])


def test_best_first_selects_exactly_what_a_full_stable_sort_would():
    from clipscape.models.search import best_first

    rng = np.random.default_rng(4)
    for n in (0, 1, 7, 1000):
        for scores in (rng.normal(size=n).astype(np.float32), rng.integers(0, 3, n).astype(np.float32)):  # ties
            full = np.argsort(-scores, kind="stable")
            for top in (None, 0, 1, 3, 10, n, n + 5):
                expected = full if top is None else full[:top]
                np.testing.assert_array_equal(best_first(scores, top), expected)
                if n:
                    ex = int(rng.integers(0, n))
                    kept = full[full != ex]
                    np.testing.assert_array_equal(best_first(scores, top, exclude=ex),
                                                  kept if top is None else kept[:top])
