"""Tests for models.clusters: k-means on unit embeddings, ids renumbered biggest cluster first."""
from __future__ import annotations

import numpy as np
import pytest

from clipscape.models.clusters import MAX_K, by_size, cluster, default_k

DIM = 32


def blobs(sizes, spread: float = 0.1, seed: int = 0):
    """Unit vectors around len(sizes) random directions, shuffled; (vectors, true labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    x = centres[labels] + spread * rng.standard_normal((len(labels), DIM)) / np.sqrt(DIM)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def partition(labels) -> set[frozenset[int]]:
    """The groups of indices that share a label, whatever the label values."""
    return {frozenset(np.flatnonzero(labels == value).tolist()) for value in np.unique(labels)}


def assert_ids_by_size(ids: np.ndarray) -> None:
    """ids are int64 0..m-1, sizes never grow with the id, equal sizes by earliest member."""
    assert ids.dtype == np.int64
    assert set(ids.tolist()) == set(range(ids.max() + 1))
    sizes = np.bincount(ids)
    firsts = [np.flatnonzero(ids == i)[0] for i in range(len(sizes))]
    assert list(zip(-sizes, firsts)) == sorted(zip(-sizes, firsts))


@pytest.mark.parametrize(("n", "k"), [(0, 0), (1, 1), (2, 2), (4, 2), (7, 2), (8, 2), (12, 2),
                                      (13, 3), (50, 5), (200, 10), (288, 12), (10**6, MAX_K)])
def test_default_k(n, k):
    assert default_k(n) == k


def test_well_separated_blobs_are_recovered_biggest_first():
    x, truth = blobs([40, 25, 25, 10])
    ids = cluster(x, k=4, seed=0)
    assert partition(ids) == partition(truth)
    assert_ids_by_size(ids)
    assert np.bincount(ids).tolist() == [40, 25, 25, 10]


def test_default_k_recovers_that_many_blobs():
    x, truth = blobs([14, 10, 10, 8, 8], seed=3)
    assert default_k(len(x)) == 5
    assert partition(cluster(x, seed=0)) == partition(truth)


def test_same_seed_same_ids_and_input_scale_does_not_matter():
    x, _ = blobs([30, 30, 30], spread=1.5, seed=1)  # overlapping: the seed can matter here
    ids = cluster(x, k=3, seed=7)
    np.testing.assert_array_equal(cluster(x.copy(), k=3, seed=7), ids)
    np.testing.assert_array_equal(cluster(x * 5.0, k=3, seed=7), ids)  # unit length first
    assert_ids_by_size(ids)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_collections(n):
    x, _ = blobs([n], seed=n)
    ids = cluster(x)
    assert ids.dtype == np.int64 and ids.shape == (n,)
    assert ids.tolist() == list(range(n))  # two points: two clusters, the first one is 0


def test_k_above_n_gives_each_point_its_own_cluster():
    x, _ = blobs([3], seed=2)
    assert cluster(x, k=10).tolist() == [0, 1, 2]
    assert cluster(np.zeros((0, DIM), np.float32), k=3).shape == (0,)


def test_duplicates_give_fewer_clusters_without_gaps():
    x, _ = blobs([2], seed=4)
    ids = cluster(np.repeat(x, [3, 2], axis=0), k=4)  # two distinct points, asked for four
    assert ids.tolist() == [0, 0, 0, 1, 1]
    assert cluster(np.repeat(x[:1], 6, axis=0)).tolist() == [0] * 6


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k=0"):
        cluster(blobs([5])[0], k=0)


def test_by_size_renumbers_biggest_first_ties_by_first_member():
    labels = np.array([7, 3, 3, 9, 7, 9, 5, 9])
    assert by_size(labels).tolist() == [1, 2, 2, 0, 1, 0, 3, 0]
    assert by_size(np.array([4, 2, 2, 4])).tolist() == [0, 1, 1, 0]
    assert by_size(np.array([], np.int32)).dtype == np.int64
