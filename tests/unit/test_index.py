"""Vector index backends against brute-force references (seeded random unit vectors)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from tailor.retrieval.index import (
    FlatIndex,
    HNSWIndex,
    IVFIndex,
    VectorIndex,
    create_index,
    exact_topk,
    index_kinds,
    load_index,
)

N, DIM, NQ = 5_000, 64, 50
BACKENDS = ["flat", "hnsw", "ivf"]
#: Train the IVF lists on this small data (exact until ``train_threshold`` vectors); uniform
#: random vectors are its worst case, hence few lists and most of them probed.
OPTIONS: dict[str, dict] = {"ivf": {"train_threshold": 1000, "nlist": 16, "nprobe": 14}}


def unit(rng: np.random.Generator, n: int, d: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, vectors, queries): ids are sparse and shuffled to catch position/id mix-ups."""
    rng = np.random.default_rng(1234)
    ids = rng.permutation(np.arange(N, dtype=np.int64) * 7 + 3)
    return ids, unit(rng, N), unit(rng, NQ)


@pytest.fixture(scope="module")
def built(data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, VectorIndex]:
    ids, vecs, _ = data
    out = {}
    for kind in BACKENDS:
        index = create_index(kind, DIM, **OPTIONS.get(kind, {}))
        index.add(ids, vecs)
        out[kind] = index
    return out


def brute(
    queries: np.ndarray, vecs: np.ndarray, ids: np.ndarray, k: int, allowed: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Reference: full score matrix, filtered, sorted; -1/-inf padding like the index."""
    keep = np.ones(len(ids), bool) if allowed is None else np.isin(ids, allowed)
    scores = queries @ vecs[keep].T
    kept = ids[keep]
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    d = np.full((len(queries), k), -np.inf, np.float32)
    i = np.full((len(queries), k), -1, np.int64)
    n = order.shape[1]
    d[:, :n] = np.take_along_axis(scores, order, axis=1)
    i[:, :n] = kept[order]
    return d, i


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = total = 0
    for f, t in zip(found, truth, strict=True):
        t = set(t[t >= 0].tolist())
        hits += len(t & set(f[f >= 0].tolist()))
        total += len(t)
    return hits / max(total, 1)


# ---------------------------------------------------------------------------- exactness/recall
def test_flat_equals_faiss_and_numpy_reference(data, built) -> None:
    ids, vecs, queries = data
    ref = faiss.IndexFlatIP(DIM)
    ref.add(vecs)
    ref_d, ref_pos = ref.search(queries, 10)
    d, i = built["flat"].search(queries, 10)
    np.testing.assert_array_equal(i, ids[ref_pos])
    np.testing.assert_allclose(d, ref_d, rtol=1e-6, atol=1e-6)
    bd, bi = brute(queries, vecs, ids, 10, None)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_ann_recall_at_10(data, built, kind: str) -> None:
    ids, vecs, queries = data
    _, truth = brute(queries, vecs, ids, 10, None)
    d, i = built[kind].search(queries, 10)
    assert recall(i, truth) >= 0.95
    assert (i >= 0).all()
    assert (np.diff(d, axis=1) <= 1e-6).all(), "scores must be sorted best first"


def test_exact_topk_helper(data) -> None:
    ids, vecs, queries = data
    d, i = exact_topk(queries, vecs, ids, 7)
    bd, bi = brute(queries, vecs, ids, 7, None)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(d, bd, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- filtered search
def random_allowed(rng: np.random.Generator, ids: np.ndarray, size: int) -> np.ndarray:
    allowed = rng.choice(ids, size=size, replace=False)
    # Unknown ids are legal in ``allowed`` and must simply be ignored.
    return np.concatenate([allowed, np.array([-5, 10**12], dtype=np.int64)])


SIZES = [1, 2, 3, 5, 9, 10, 11, 25, 60, 150, 600, 1100, 2500, 4900]


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("flat", {}),
        ("hnsw", {}),
        # Force the graph path even for tiny allowed sets: the fallback must keep the guarantee.
        ("hnsw", {"exact_threshold": 0, "min_selectivity": 0.0, "max_ef_search": 16}),
        ("ivf", {}),
        # IVF lists only, one probed list: short answers must be completed exactly.
        ("ivf", {"train_threshold": 1000, "exact_threshold": 0, "nprobe": 1, "max_nprobe": 1}),
    ],
    ids=["flat", "hnsw", "hnsw-graph-only", "ivf", "ivf-lists-only"],
)
def test_filtered_search_vs_bruteforce(
    data, built, kind: str, options: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids, vecs, queries = data
    if options:
        index = create_index(kind, DIM, **options)
        index.add(ids, vecs)
    else:
        index = built[kind]
    exact_rows = []
    original = HNSWIndex._exact

    def counting(self, q, k, valid):  # type: ignore[no-untyped-def]
        exact_rows.append(len(q))
        return original(self, q, k, valid)

    ivf_original = IVFIndex._exact

    def ivf_counting(self, q, k, valid):  # type: ignore[no-untyped-def]
        exact_rows.append(len(q))
        return ivf_original(self, q, k, valid)

    monkeypatch.setattr(HNSWIndex, "_exact", counting)
    monkeypatch.setattr(IVFIndex, "_exact", ivf_counting)
    rng = np.random.default_rng(99)
    recalls = []
    for trial in range(3 * len(SIZES)):
        size = SIZES[trial % len(SIZES)]
        allowed = random_allowed(rng, ids, size)
        k = int(rng.choice([1, 5, 10, 50]))
        q = queries[rng.choice(NQ, size=4, replace=False)]
        d, i = index.search(q, k, allowed=allowed)
        bd, bi = brute(q, vecs, ids, k, allowed)
        assert d.shape == i.shape == (4, k)
        found = i[i >= 0]
        assert np.isin(found, allowed).all(), f"violating id for size={size} k={k}"
        want = min(k, size)
        assert ((i >= 0).sum(axis=1) == want).all(), f"size={size} k={k}"
        assert (i[:, want:] == -1).all() and np.isneginf(d[:, want:]).all()
        for row in i:
            assert len(set(row[row >= 0].tolist())) == (row >= 0).sum(), "duplicate ids"
        if kind == "flat":
            np.testing.assert_array_equal(i, bi)
            np.testing.assert_allclose(d[:, :want], bd[:, :want], rtol=1e-5, atol=1e-5)
        else:
            recalls.append(recall(i, bi))
    if recalls and not options:  # the capped configuration trades recall for speed
        assert np.mean(recalls) >= 0.95
    if options:  # the capped graph search came back short and the exact fallback filled in
        assert sum(exact_rows) > 0


@pytest.mark.parametrize("kind", BACKENDS)
def test_allowed_edge_cases(data, built, kind: str) -> None:
    ids, _, queries = data
    index = built[kind]
    d, i = index.search(queries[:2], 5, allowed=np.array([], dtype=np.int64))
    assert (i == -1).all() and np.isneginf(d).all()
    d, i = index.search(queries[:2], 5, allowed=np.array([10**12, -3]))  # none present
    assert (i == -1).all()
    d, i = index.search(queries[:2], 5, allowed=ids)  # everything allowed
    np.testing.assert_array_equal(i, index.search(queries[:2], 5)[1])
    d, i = index.search(queries[:2], 0)
    assert d.shape == i.shape == (2, 0)
    d, i = index.search(queries[0], 3)  # a single vector is one query
    assert i.shape == (1, 3)


# ---------------------------------------------------------------------------- padding and errors
@pytest.mark.parametrize("kind", BACKENDS)
def test_padding_when_fewer_than_k(kind: str) -> None:
    rng = np.random.default_rng(5)
    index = create_index(kind, 8)
    d, i = index.search(unit(rng, 2, 8), 4)  # empty index
    assert (i == -1).all() and np.isneginf(d).all()
    vecs = unit(rng, 3, 8)
    index.add([10, 20, 30], vecs)
    d, i = index.search(vecs[:1], 10)
    assert i[0, 0] == 10
    assert sorted(i[0, :3].tolist()) == [10, 20, 30]
    assert (i[0, 3:] == -1).all() and np.isneginf(d[0, 3:]).all()
    assert np.isfinite(d[0, :3]).all()


def test_unknown_backend_names_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"'annoy'.*\['flat', 'hnsw', 'ivf'\]"):
        create_index("annoy", 8)
    assert index_kinds() == ("flat", "hnsw", "ivf")


@pytest.mark.parametrize("kind", BACKENDS)
def test_wrong_dimension_errors(kind: str) -> None:
    index = create_index(kind, 16)
    with pytest.raises(ValueError, match=r"dimension 12 .* dimension 16"):
        index.add([1, 2], np.zeros((2, 12), np.float32))
    index.add([1], np.ones((1, 16), np.float32))
    with pytest.raises(ValueError, match=r"dimension 15 .* dimension 16"):
        index.search(np.zeros((3, 15), np.float32), 2)
    with pytest.raises(ValueError, match="2 ids but 1 vectors"):
        index.add([5, 6], np.ones((1, 16), np.float32))
    with pytest.raises(ValueError, match=r"duplicate ids in one batch: \[7\]"):
        index.add([7, 7], np.ones((2, 16), np.float32))
    with pytest.raises(ValueError, match="k must be >= 0"):
        index.search(np.ones((1, 16), np.float32), -1)


@pytest.mark.parametrize("kind", BACKENDS)
def test_add_existing_id_raises_and_reconstruct_unknown(kind: str) -> None:
    index = create_index(kind, 4)
    index.add([1, 2], np.eye(4, dtype=np.float32)[:2])
    with pytest.raises(ValueError, match=r"already in the index: \[2\].*upsert"):
        index.add([3, 2], np.eye(4, dtype=np.float32)[2:])
    assert len(index) == 2  # nothing added by the failed call
    with pytest.raises(KeyError, match=r"\[9\]"):
        index.reconstruct([1, 9])
    assert 1 in index and 9 not in index


# ---------------------------------------------------------------------------- mutation
@pytest.mark.parametrize("kind", BACKENDS)
def test_incremental_changes_stay_consistent(kind: str) -> None:
    rng = np.random.default_rng(7)
    model: dict[int, np.ndarray] = {}
    index = create_index(kind, DIM, **OPTIONS.get(kind, {}))

    def check() -> None:
        ref_ids = np.array(sorted(model), dtype=np.int64)
        ref_vecs = np.stack([model[i] for i in ref_ids])
        assert len(index) == len(model)
        assert sorted(index.ids().tolist()) == ref_ids.tolist()
        sample = rng.choice(ref_ids, size=20, replace=False)
        np.testing.assert_allclose(
            index.reconstruct(sample), ref_vecs[np.searchsorted(ref_ids, sample)]
        )
        q = unit(rng, 20)
        d, i = index.search(q, 10)
        bd, bi = brute(q, ref_vecs, ref_ids, 10, None)
        assert np.isin(i, ref_ids).all()
        assert (np.diff(d, axis=1) <= 1e-6).all()
        if kind == "flat":
            np.testing.assert_array_equal(i, bi)
            np.testing.assert_allclose(d, bd, rtol=1e-5, atol=1e-5)
        else:
            assert recall(i, bi) >= 0.9
        allowed = rng.choice(ref_ids, size=30, replace=False)
        _, i = index.search(q, 10, allowed=allowed)
        assert np.isin(i, allowed).all() and (i >= 0).all()
        if kind == "flat":
            np.testing.assert_array_equal(i, brute(q, ref_vecs, ref_ids, 10, allowed)[1])

    first = np.arange(2000, dtype=np.int64)
    vecs = unit(rng, 2000)
    index.add(first, vecs)
    model.update(zip(first.tolist(), vecs, strict=True))
    check()

    gone = rng.choice(first, size=300, replace=False)
    assert index.remove(np.concatenate([gone, [99_999]])) == 300  # unknown id ignored
    assert index.remove(gone) == 0
    for i in gone.tolist():
        del model[i]
    check()

    changed = rng.choice(np.array(sorted(model)), size=200, replace=False)
    fresh = np.arange(5000, 5200, dtype=np.int64)
    ids = np.concatenate([changed, fresh])
    new_vecs = unit(rng, len(ids))
    index.upsert(ids, new_vecs)
    model.update(zip(ids.tolist(), new_vecs, strict=True))
    check()
    # A replaced vector is found by its new value, not its old one.
    _d, i = index.search(new_vecs[:5], 1)
    assert i[:, 0].tolist() == ids[:5].tolist()

    if isinstance(index, HNSWIndex):
        assert index.tombstones == 500
        gone = rng.choice(np.array(sorted(model)), size=600, replace=False)
        index.remove(gone)  # tombstones now exceed 25% of labels: compacted
        for i in gone.tolist():
            del model[i]
        assert index.tombstones == 0
        check()
    if isinstance(index, IVFIndex):
        assert index.trained
        gone = rng.choice(np.array(sorted(model)), size=1200, replace=False)
        index.remove(gone)  # dead rows now exceed half the rows: renumbered
        for i in gone.tolist():
            del model[i]
        assert index.trained and len(index) == len(model)
        check()


# ---------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("kind", BACKENDS)
def test_save_load_round_trip(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(11)
    options = {"ef_search": 40} if kind == "hnsw" else {}
    if kind == "ivf":
        options = {"train_threshold": 400, "nprobe": 4}
    index = create_index(kind, 32, **options)
    ids = np.arange(1, 801, dtype=np.int64) * 5
    vecs = unit(rng, 800, 32)
    index.add(ids, vecs)
    index.remove(ids[:50])  # HNSW: tombstones survive the round trip
    q = unit(rng, 10, 32)
    allowed = ids[100:400]
    before = index.search(q, 10), index.search(q, 10, allowed=allowed)

    index.save(tmp_path / "idx")
    for loaded in (load_index(tmp_path / "idx"), type(index).load(tmp_path / "idx")):
        assert type(loaded) is type(index)
        assert loaded.dim == 32 and len(loaded) == 750
        assert sorted(loaded.ids().tolist()) == sorted(ids[50:].tolist())
        after = loaded.search(q, 10), loaded.search(q, 10, allowed=allowed)
        for (d0, i0), (d1, i1) in zip(before, after, strict=True):
            np.testing.assert_array_equal(i0, i1)
            np.testing.assert_allclose(d0, d1)
        if isinstance(loaded, HNSWIndex):
            assert loaded.ef_search == 40 and loaded.tombstones == 50
        if isinstance(loaded, IVFIndex):
            assert loaded.trained and loaded.nprobe == 4
        loaded.add([1], unit(rng, 1, 32))  # still mutable
    other = FlatIndex if kind == "hnsw" else HNSWIndex
    with pytest.raises(ValueError, match=f"is '{kind}'"):
        other.load(tmp_path / "idx")
    with pytest.raises(FileNotFoundError):
        load_index(tmp_path / "missing")
