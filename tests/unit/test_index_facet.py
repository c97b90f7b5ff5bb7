"""The IVF index partitioned by a metadata facet (``facet=...``), against brute force.

Seeded clustered data where the facet (a category) follows the cluster, as in a catalog;
with ``nprobe = nlist`` every plan must return exactly the brute-force filtered top-k.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tailor.retrieval.index import IVFIndex, create_index, load_index
from tests.unit.test_index_scale import DIM, brute, clustered, recall

N, N_FACETS, NLIST = 3000, 6, 16


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(5)
    ids = rng.permutation(N).astype(np.int64) * 7 + 3
    vecs, cluster = clustered(rng, N, DIM, 24)
    facets = np.where(rng.random(N) < 0.85, cluster % N_FACETS, rng.integers(0, N_FACETS, N))
    facets[rng.random(N) < 0.03] = -1  # products without the facet value
    near = vecs[rng.choice(N, 10, replace=False)]  # perturbed products, as shoppers ask
    queries = near + rng.standard_normal(near.shape).astype(np.float32) / (2 * np.sqrt(DIM))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return ids, vecs, facets.astype(np.int64), queries


def build(data: tuple[np.ndarray, ...], **options: object) -> IVFIndex:
    ids, vecs, facets, _ = data
    opts: dict[str, object] = {"train_threshold": 500, "nlist": NLIST, "facet": "category"}
    opts.update(options)
    index = create_index("ivf", DIM, **opts)
    assert isinstance(index, IVFIndex)
    index.add(ids, vecs, facets=facets)
    return index


def filters(data: tuple[np.ndarray, ...]) -> dict[str, np.ndarray | None]:
    """Allowed id sets covering every plan of the partitioned index."""
    ids, _, facets, _ = data
    rng = np.random.default_rng(9)
    cheap = rng.random(N) < 0.3
    return {
        "none": None,
        "empty": np.array([], dtype=np.int64),
        "all": ids.copy(),
        "facet": ids[facets == 2],  # exactly one facet value: no bitmap
        "two facets": ids[(facets == 1) | (facets == 4)],
        "no facet value": ids[facets == -1],
        "facet + price": ids[(facets == 2) & cheap],  # one facet value, bitmap
        "price": ids[cheap],  # every facet value, bitmap
        "sparse": rng.choice(ids, 40, replace=False),
        "few": ids[(facets == 3)][:7],  # fewer than k
        "unknown and duplicates": np.concatenate([ids[facets == 0][:50]] * 2 + [[-5, 10**12]]),
    }


def check_exact(index: IVFIndex, data: tuple[np.ndarray, ...], ids: np.ndarray | None = None):
    """Every filter and k against brute force over the index's current vectors."""
    _, _, _, queries = data
    live = index.ids() if ids is None else ids
    vecs = index.reconstruct(live)
    for name, allowed in filters(data).items():
        for k in (1, 10, 60):
            _, found = index.search(queries, k, allowed)
            truth = brute(queries, vecs, live, k, allowed)
            n_allowed = live.size if allowed is None else int(np.isin(live, allowed).sum())
            assert ((found >= 0).sum(axis=1) == min(k, n_allowed)).all(), (name, k)
            np.testing.assert_array_equal(found, truth, err_msg=f"{name} k={k}")


@pytest.mark.parametrize("exact_threshold", [0, 1000])
def test_partitioned_lists_are_exact_when_every_list_is_probed(data, exact_threshold) -> None:
    index = build(data, nprobe=NLIST, max_nprobe=NLIST, exact_threshold=exact_threshold)
    assert index.trained and index.nlist == NLIST and index.facet == "category"
    assert index.n_slots == N_FACETS + 1  # one sub-list per value, and the shared one
    check_exact(index, data)


def test_default_plan_recall_and_filter_guarantee(data) -> None:
    ids, vecs, _, queries = data
    index = build(data, nprobe=4, exact_threshold=0)
    recalls = []
    for name, allowed in filters(data).items():
        _, found = index.search(queries, 10, allowed)
        if allowed is not None:
            assert np.isin(found[found >= 0], allowed).all(), name
        recalls.append(recall(found, brute(queries, vecs, ids, 10, allowed)))
    assert np.mean(recalls) >= 0.95


def test_a_facet_filter_scans_only_its_sub_lists(data) -> None:
    _, _, _, queries = data
    index = build(data, nprobe=2, exact_threshold=0)
    allowed = filters(data)["facet"]
    assert allowed is not None
    keys, bitmap = index._probe(queries, index._prepare_allowed(allowed)[0])
    assert not bitmap  # the filter is exactly facet value 2
    assert ((keys[keys >= 0] % index.n_slots) == 3).all()  # slot of value 2
    keys, bitmap = index._probe(queries, index._prepare_allowed(filters(data)["price"])[0])
    assert bitmap


def test_upsert_remove_and_new_facet_values(data) -> None:
    ids, vecs, facets, _ = data
    index = build(data, nprobe=NLIST, max_nprobe=NLIST, exact_threshold=0)
    rng = np.random.default_rng(2)
    moved = ids[facets == 2][:40]  # to another facet value and a new vector
    index.upsert(moved, -vecs[:40], facets=np.full(40, 5))
    newcomers = np.arange(40, dtype=np.int64) + 10**6  # a value unseen at training: slot 0
    fresh = vecs[100:140] + rng.standard_normal((40, DIM)).astype(np.float32) * 0.05
    fresh /= np.linalg.norm(fresh, axis=1, keepdims=True)  # no ties with vecs[100:140]
    index.upsert(newcomers, fresh, facets=np.full(40, N_FACETS + 3))
    gone = rng.choice(ids, 200, replace=False)
    assert index.remove(gone) == 200
    assert not np.isin(gone, index.ids()).any()
    check_exact(index, data)
    _, found = index.search(fresh[:1], 5, newcomers)
    assert found[0, 0] == newcomers[0]
    # Enough removals compact the rows and re-choose the sub-lists (the new value gets one).
    index.remove(ids[: N // 2])
    assert index.n_slots == N_FACETS + 2
    check_exact(index, data)


def test_facet_slots_cap_and_unpartitioned(data) -> None:
    capped = build(data, nprobe=NLIST, max_nprobe=NLIST, exact_threshold=0, facet_slots=2)
    assert capped.n_slots == 3  # the two largest values; the others share slot 0
    check_exact(capped, data)
    plain = build(data, nprobe=NLIST, max_nprobe=NLIST, exact_threshold=0, facet=None)
    assert plain.n_slots == 1 and plain.facet is None
    check_exact(plain, data)


def test_save_load_keeps_the_partition(data, tmp_path: Path) -> None:
    _, _, _, queries = data
    index = build(data, nprobe=3, exact_threshold=0)
    index.remove(index.ids()[:100])
    index.save(tmp_path / "ivf")
    loaded = load_index(tmp_path / "ivf")
    assert isinstance(loaded, IVFIndex)
    assert loaded.options() == index.options() and loaded.n_slots == index.n_slots
    for allowed in filters(data).values():
        np.testing.assert_array_equal(
            loaded.search(queries, 10, allowed)[1], index.search(queries, 10, allowed)[1]
        )


def test_facets_are_validated(data) -> None:
    ids, vecs, _, _ = data
    index = create_index("ivf", DIM, facet="category")
    with pytest.raises(ValueError, match="facets must have shape"):
        index.add(ids[:3], vecs[:3], facets=[1, 2])
    with pytest.raises(TypeError, match="integer"):
        index.add(ids[:2], vecs[:2], facets=[1.5, 2.0])
    flat = create_index("flat", DIM)
    flat.add(ids[:3], vecs[:3], facets=[0, 1, 2])  # ignored by unpartitioned backends
    assert len(flat) == 3 and flat.facet is None


def test_metadata_codes_feed_the_partition() -> None:
    from tailor.retrieval.filters import MetadataTable
    from tests.unit.test_retrieval_engine import product

    table = MetadataTable.from_products([product(n, id=n) for n in (1, 2, 3, 4, 5)])
    codes = table.codes("category", np.array([5, 1, 99, 3], dtype=np.int64))
    boots, kitchen = table.codes("category", [1, 3])  # products 1 and 5 are boots
    assert codes.tolist() == [boots, boots, -1, kitchen] and boots != kitchen >= 0
    assert table.codes("brand", [2])[0] == -1  # product 2 has no brand
    many = MetadataTable.from_products([product(n, id=n) for n in range(1, 201)])
    assert many.codes("category", [5, 1, 999]).tolist() == [boots, boots, -1]  # few: no sort
    with pytest.raises(ValueError, match="categorical"):
        table.codes("price", [1])


def test_broad_filters_post_filtered_match_a_brute_force_scan() -> None:
    """A filter allowing >= 20 % of the ids is applied after an unfiltered search for more
    results; exact against numpy when every list is probed, for a filter independent of the
    query and for one working against it (which falls back to the regular plan)."""
    rng = np.random.default_rng(11)
    n, dim = 3000, 16
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = np.arange(10, 10 + n, dtype=np.int64)
    index = IVFIndex(dim, nlist=16, nprobe=16, train_threshold=500, facet=None)
    index.add(ids, vecs)
    queries = vecs[rng.choice(n, 25, replace=False)] + 0.05 * rng.normal(size=(25, dim))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    independent = np.sort(rng.choice(ids, int(0.3 * n), replace=False))
    # "against the query": the ids least similar to the first query
    against = np.sort(ids[np.argsort(vecs @ queries[0])[: int(0.25 * n)]])
    for allowed in (independent, against, independent[::-1].copy()):
        scores, got = index.search(queries, 10, allowed)
        mask = np.isin(ids, allowed)
        for qi, q in enumerate(queries):
            sims = vecs[mask] @ q
            best = ids[mask][np.argsort(-sims, kind="stable")[:10]]
            assert set(got[qi].tolist()) == set(best.tolist())
            assert np.all(np.diff(scores[qi]) <= 1e-6)
    # the shortcut is taken for the independent filter and declined where it would be short
    assert index._search_broad(queries, 10, independent) is not None
    assert index._search_broad(queries[:1], 10, against) is None
    assert index._search_broad(queries, 10, independent[::-1].copy()) is None  # not sorted
    assert index.options()["post_filter_share"] == 0.2
    with pytest.raises(ValueError, match="post_filter_share"):
        IVFIndex(dim, post_filter_share=0.0)
