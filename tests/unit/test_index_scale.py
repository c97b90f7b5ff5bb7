"""The IVF backend, its selectivity-aware plan and the "auto" size rule, against brute force.

Seeded random data; the recall test uses clustered vectors (a Gaussian mixture on the sphere,
like real embeddings) at a size where the IVF lists are trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tailor.retrieval import ProductSearch
from tailor.retrieval import index as index_module
from tailor.retrieval.index import (
    AUTO_FLAT_MAX,
    IVFIndex,
    VectorIndex,
    choose_index_kind,
    create_index,
    exact_topk,
    load_index,
    resolve_index_kind,
)
from tailor.store import make_session_factory, session_scope
from tests.unit.test_retrieval_engine import FakeEmbedder, product

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(rng: np.random.Generator, n: int, d: int, clusters: int) -> tuple[np.ndarray, ...]:
    """Unit vectors around ``clusters`` centres (cosine ~0.7 to the centre) and their cluster."""
    centres = unit(rng.standard_normal((clusters, d)))
    label = rng.integers(0, clusters, n)
    x = centres[label] + rng.standard_normal((n, d)).astype(np.float32) / np.sqrt(d)
    return unit(x), label


def brute(
    q: np.ndarray, vecs: np.ndarray, ids: np.ndarray, k: int, allowed: np.ndarray | None
) -> np.ndarray:
    """Exact filtered top-k ids, padded with -1."""
    keep = np.ones(ids.size, bool) if allowed is None else np.isin(ids, allowed)
    _, top = exact_topk(q, vecs[keep], ids[keep], k)
    out = np.full((q.shape[0], k), -1, np.int64)
    out[:, : top.shape[1]] = top
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(
        len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist()))
        for f, t in zip(found, truth, strict=True)
    )
    total = int((truth >= 0).sum())
    return hits / total if total else 1.0


# Backends and IVF plans under test: (kind, options).
CONFIGS = {
    "flat": ("flat", {}),
    "hnsw": ("hnsw", {}),
    "ivf-untrained": ("ivf", {}),  # below train_threshold: exact
    "ivf-plan": ("ivf", {"train_threshold": 500, "nlist": 16, "nprobe": 12}),
    "ivf-lists": ("ivf", {"train_threshold": 500, "nlist": 16, "nprobe": 2, "exact_threshold": 0}),
    "ivf-exact": ("ivf", {"train_threshold": 500, "nlist": 16, "exact_threshold": 10**9}),
}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    ids = rng.permutation(3000).astype(np.int64) * 11 + 5
    vecs, _ = clustered(rng, 3000, DIM, 20)
    queries, _ = clustered(rng, 12, DIM, 20)
    return ids, vecs, queries


@pytest.mark.parametrize("config", list(CONFIGS))
def test_filters_of_every_selectivity_keep_the_guarantee(data, config: str) -> None:
    ids, vecs, queries = data
    kind, options = CONFIGS[config]
    index = create_index(kind, DIM, **options)
    index.add(ids, vecs)
    if config.startswith("ivf-") and config != "ivf-untrained":
        assert isinstance(index, IVFIndex) and index.trained and index.nlist == 16
    rng = np.random.default_rng(8)
    cases: list[np.ndarray | None] = [
        None,
        np.array([], dtype=np.int64),  # nothing allowed
        ids[:1],  # a single id
        ids.copy(),  # every id
        np.concatenate([ids[:5], ids[:5], [-1, 10**15]]),  # duplicates and unknown ids
        *(rng.choice(ids, size=s, replace=False) for s in (9, 10, 30, 300, 1500, 2900)),
    ]
    recalls = []
    for allowed in cases:
        for k in (1, 10, 25):
            _, found = index.search(queries, k, allowed)
            truth = brute(queries, vecs, ids, k, allowed)
            n_allowed = ids.size if allowed is None else int(np.isin(ids, allowed).sum())
            want = min(k, n_allowed)
            assert found.shape == (queries.shape[0], k)
            assert ((found >= 0).sum(axis=1) == want).all(), f"{config} k={k} n={n_allowed}"
            assert (found[:, want:] == -1).all()
            if allowed is not None:
                assert np.isin(found[found >= 0], allowed).all(), "id outside allowed"
            for row in found:
                assert len(set(row[row >= 0].tolist())) == want, "duplicate ids"
            if kind == "flat" or config in ("ivf-untrained", "ivf-exact"):
                np.testing.assert_array_equal(found, truth)
            else:
                recalls.append(recall(found, truth))
    if config in ("hnsw", "ivf-plan"):
        assert np.mean(recalls) >= 0.95


def test_ivf_recall_on_20k_clustered_vectors() -> None:
    rng = np.random.default_rng(21)
    n, d = 20_000, 64
    vecs, label = clustered(rng, n, d, 150)
    ids = np.arange(n, dtype=np.int64) + 1
    index = create_index("ivf", d)  # default options: trains at 20k
    index.add(ids, vecs)
    assert isinstance(index, IVFIndex) and index.trained
    assert index.nlist == IVFIndex.default_nlist(n)
    src = rng.choice(n, size=60, replace=False)
    queries = unit(vecs[src] + rng.standard_normal((60, d)).astype(np.float32) * 0.5 / np.sqrt(d))
    category = label % 40  # ~2.5 % of products, correlated with the clusters
    price = rng.random(n)
    filters: dict[str, list[np.ndarray | None]] = {
        "none": [None] * 60,
        "category": [ids[category == category[s]] for s in src],
        "price 30%": [ids[(price > 0.4) & (price < 0.7)]] * 60,
        "random 10%": [rng.choice(ids, size=2000, replace=False) for _ in src],
    }
    for name, allowed_per_query in filters.items():
        found = np.stack(
            [index.search(queries[j], 10, a)[1][0] for j, a in enumerate(allowed_per_query)]
        )
        truth = np.stack(
            [
                brute(queries[j : j + 1], vecs, ids, 10, a)[0]
                for j, a in enumerate(allowed_per_query)
            ]
        )
        assert recall(found, truth) >= 0.95, name


def test_ivf_plan_and_nprobe_widening() -> None:
    rng = np.random.default_rng(4)
    vecs, _ = clustered(rng, 4000, DIM, 30)
    index = IVFIndex(DIM, nlist=64, nprobe=8, exact_threshold=100, max_nprobe=40, train_threshold=1)
    assert index.plan(10) == "exact"  # untrained
    index.add(np.arange(4000), vecs)
    assert index.trained and index.nlist == 64
    assert index.plan(4000) == "ivf" and index.nprobe_for(4000) == 8
    assert index.plan(100) == "exact" and index.plan(101) == "ivf"
    assert index.nprobe_for(1000) == 16  # nprobe / selectivity ** 0.5 (the default)
    assert index.nprobe_for(101) == 40  # capped at max_nprobe
    index.selectivity_exponent = 1.0
    assert index.nprobe_for(2000) == 16  # nprobe / selectivity
    index.max_nprobe = 10_000
    assert index.nprobe_for(101) == 64  # and at nlist


def test_ivf_mutations_retrain_compact_and_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    vecs, _ = clustered(rng, 6000, DIM, 25)
    ids = np.arange(6000, dtype=np.int64) * 2
    index = IVFIndex(DIM, train_threshold=1000, nprobe=32)
    model: dict[int, np.ndarray] = {}

    def check(ix: VectorIndex) -> None:
        ref_ids = np.array(sorted(model), dtype=np.int64)
        ref = np.stack([model[i] for i in ref_ids])
        assert len(ix) == ref_ids.size
        assert sorted(ix.ids().tolist()) == ref_ids.tolist()
        sample = rng.choice(ref_ids, size=50, replace=False)
        np.testing.assert_allclose(ix.reconstruct(sample), ref[np.searchsorted(ref_ids, sample)])
        near = ref[rng.choice(ref_ids.size, size=20, replace=False)]
        q = unit(near + rng.standard_normal(near.shape).astype(np.float32) * 0.5 / np.sqrt(DIM))
        allowed = rng.choice(ref_ids, size=ref_ids.size // 3, replace=False)
        for a in (None, allowed, allowed[:7]):
            _, found = ix.search(q, 10, a)
            if a is not None:
                assert np.isin(found[found >= 0], a).all()
            assert (
                (found >= 0).sum(axis=1) == min(10, ref_ids.size if a is None else a.size)
            ).all()
            assert recall(found, brute(q, ref, ref_ids, 10, a)) >= 0.9

    index.add(ids[:800], vecs[:800])  # untrained: exact
    model.update(zip(ids[:800].tolist(), vecs[:800], strict=True))
    assert not index.trained
    check(index)
    index.add(ids[800:1500], vecs[800:1500])  # crosses train_threshold
    model.update(zip(ids[800:1500].tolist(), vecs[800:1500], strict=True))
    assert index.trained
    first_nlist = index.nlist
    check(index)

    index.add(ids[1500:], vecs[1500:])  # grows past 4x the trained size: retrained
    model.update(zip(ids[1500:].tolist(), vecs[1500:], strict=True))
    assert index.nlist == IVFIndex.default_nlist(6000) != first_nlist
    check(index)

    changed = rng.choice(ids, size=300, replace=False)
    new = unit(rng.standard_normal((300, DIM)))
    index.upsert(changed, new)
    model.update(zip(changed.tolist(), new, strict=True))
    _, top = index.search(new[:5], 1)
    assert top[:, 0].tolist() == changed[:5].tolist()  # found by the new vector
    check(index)

    gone = rng.choice(np.array(sorted(model)), size=3500, replace=False)
    assert index.remove(np.concatenate([gone, [-7 + 10**9]])) == 3500  # compacts rows
    for i in gone.tolist():
        del model[i]
    assert index.trained and len(index) == len(model)
    check(index)

    index.save(tmp_path / "ivf")
    loaded = load_index(tmp_path / "ivf")
    assert isinstance(loaded, IVFIndex) and loaded.trained and loaded.nprobe == 32
    q, _ = clustered(rng, 10, DIM, 25)
    for a in (None, np.array(sorted(model))[::5]):
        np.testing.assert_array_equal(index.search(q, 10, a)[1], loaded.search(q, 10, a)[1])
    check(loaded)
    loaded.add([1], unit(rng.standard_normal((1, DIM))))  # still mutable
    assert 1 in loaded and 3 not in loaded


def test_untrained_ivf_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    vecs = unit(rng.standard_normal((50, DIM)))
    index = create_index("ivf", DIM)
    index.add(np.arange(50), vecs)
    index.remove([3, 4])
    index.save(tmp_path / "small")
    loaded = load_index(tmp_path / "small")
    assert isinstance(loaded, IVFIndex) and not loaded.trained and len(loaded) == 48
    np.testing.assert_array_equal(index.search(vecs, 5)[1], loaded.search(vecs, 5)[1])


def test_sparse_ids_use_the_sorted_lookup() -> None:
    rng = np.random.default_rng(6)
    vecs = unit(rng.standard_normal((400, DIM)))
    ids = np.arange(400, dtype=np.int64) * 10**12 + 3  # far too sparse for a dense table
    for kind in ("hnsw", "ivf"):
        index = create_index(kind, DIM)
        index.add(ids, vecs)
        allowed = ids[::7]
        _, found = index.search(vecs[:5], 10, np.concatenate([allowed, [4, -2]]))
        np.testing.assert_array_equal(found, brute(vecs[:5], vecs, ids, 10, allowed))
        assert int(ids[9]) in index and 4 not in index
        index.remove(ids[:100])
        assert len(index) == 300 and int(ids[9]) not in index


def test_choose_index_kind_rule() -> None:
    assert choose_index_kind(0) == "flat"
    assert choose_index_kind(10_000) == "flat"  # the demo catalog stays exact
    assert choose_index_kind(AUTO_FLAT_MAX - 1) == "flat"
    assert choose_index_kind(AUTO_FLAT_MAX) == "ivf"
    assert choose_index_kind(1_000_000) == "ivf"
    assert resolve_index_kind("auto", 10_000) == "flat"
    assert resolve_index_kind("auto", 2_000_000) == "ivf"
    assert resolve_index_kind("hnsw", 10) == "hnsw"


def test_engine_auto_backend_picks_by_catalog_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory: sessionmaker[Session] = make_session_factory(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with session_scope(factory) as s:
        s.add_all(product(n) for n in range(60))
    emb = FakeEmbedder()
    d = tmp_path / "idx"
    flat = ProductSearch(emb, backend="auto")  # type: ignore[arg-type]
    assert flat.index.kind == "flat"  # empty: the small-catalog choice
    # A flat index saved by an explicit "flat" configuration is reused by "auto" at this size.
    ProductSearch.open(d, factory, emb, backend="flat")  # type: ignore[arg-type]
    auto = ProductSearch.open(d, factory, emb, backend="auto")  # type: ignore[arg-type]
    assert auto.last_open_report == "loaded" and auto.index.kind == "flat"
    # Past the threshold "auto" builds IVF (lowered here so 60 products cross it) ...
    monkeypatch.setattr(index_module, "AUTO_FLAT_MAX", 50)
    big = ProductSearch.open(tmp_path / "idx2", factory, emb, backend="auto")  # type: ignore[arg-type]
    assert big.last_open_report == "built 60" and big.index.kind == "ivf"
    assert [h.product_id for h in big.search("item3 boots", 3)] == [
        h.product_id for h in auto.search("item3 boots", 3)
    ]
    again = ProductSearch.open(tmp_path / "idx2", factory, emb, backend="auto")  # type: ignore[arg-type]
    assert again.last_open_report == "loaded" and again.index.kind == "ivf"
    # ... and a catalog back under it gets flat again (the IVF index is rebuilt).
    monkeypatch.setattr(index_module, "AUTO_FLAT_MAX", AUTO_FLAT_MAX)
    small = ProductSearch.open(tmp_path / "idx2", factory, emb, backend="auto")  # type: ignore[arg-type]
    assert small.last_open_report == "built 60" and small.index.kind == "flat"
