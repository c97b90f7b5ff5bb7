"""MetadataTable.mask must agree exactly with the reference Filter.matches."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tailor.retrieval.filters import Filter, MetadataTable

# Awkward on purpose: case and whitespace variants, a prefix that is not a path boundary
# ("Shoes" vs "Shoeshine"), deep paths, and missing values.
CATEGORIES = [
    "Shoes",
    "Shoes > Running",
    "shoes > running",
    "Shoes > Running > Trail",
    "Shoes > Hiking Boots",
    "Shoeshine",
    "Clothing > Tops > T-Shirts",
    "Clothing > Tops",
    " Clothing > Jackets ",
    "Home > Kitchen",
    "",
    None,
]
BRANDS = ["Nike", "nike", "Adidas", "  ADIDAS", "Patagonia", "Le Creuset", "", None]
COLOURS = ["Black", "black", "White", "Navy Blue", "Red", None]
MATERIALS = ["Cotton", "Leather", "mesh", "Mesh", "Wool", None]
SIZES = ["XS", "S", "M", "m", "L", "XL", "40", "41", "42", "One Size"]

# Filter values include ones no product has, and case/space variants of real ones.
F_CATEGORIES = [
    "Shoes",
    "shoes > RUNNING",
    "Shoes > Running > Trail",
    "Shoe",
    "Clothing",
    "clothing > tops",
    "Home",
    "Garden",
]
F_BRANDS = ["Nike", "ADIDAS", "patagonia ", "Le Creuset", "Unknown Brand"]
F_COLOURS = ["black", "WHITE", "navy blue", "red", "Purple"]
F_MATERIALS = ["cotton", "MESH", "wool", "Silk"]
F_SIZES = ["m", "XL", "42", "one size", "XXXL"]


def make_products(n: int, seed: int) -> list[SimpleNamespace]:
    rng = random.Random(seed)
    products = []
    for pid in range(1, n + 1):
        sizes: Any = rng.sample(SIZES, rng.randint(0, 4))
        if rng.random() < 0.05:
            sizes = None
        price: Any = round(rng.uniform(1, 500), 2)
        if rng.random() < 0.1:
            price = float(rng.choice([10, 50, 99.99, 100, 250]))  # exact boundary values
        if rng.random() < 0.02:
            price = None
        stock: Any = rng.choice([0, 0, 1, 2, 5, 40, None])
        products.append(
            SimpleNamespace(
                id=pid * 3 + 1,
                category=rng.choice(CATEGORIES),
                brand=rng.choice(BRANDS),
                colour=rng.choice(COLOURS),
                material=rng.choice(MATERIALS),
                sizes=sizes,
                price=price,
                stock=stock,
            )
        )
    return products


def random_filter(rng: random.Random, ids: list[int]) -> Filter:
    def some(values: list[str], p: float = 0.3) -> tuple[str, ...]:
        return tuple(rng.sample(values, rng.randint(1, 3))) if rng.random() < p else ()

    lo = hi = None
    if rng.random() < 0.3:
        lo = rng.choice([0, 10, 50, 99.99, 100, round(rng.uniform(0, 400), 2)])
    if rng.random() < 0.3:
        hi = rng.choice([10, 50, 99.99, 100, 250, round(rng.uniform(0, 500), 2)])
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return Filter(
        categories=some(F_CATEGORIES, 0.4),
        brands=some(F_BRANDS),
        exclude_brands=some(F_BRANDS, 0.2),
        colours=some(F_COLOURS),
        exclude_colours=some(F_COLOURS, 0.2),
        materials=some(F_MATERIALS, 0.2),
        sizes=some(F_SIZES, 0.3),
        price_min=lo,
        price_max=hi,
        in_stock=rng.random() < 0.6,
        exclude_ids=tuple(rng.sample(ids, rng.randint(0, 30))) if rng.random() < 0.3 else (),
    )


def assert_agrees(table: MetadataTable, products: list[SimpleNamespace], flt: Filter) -> None:
    expected = sorted(p.id for p in products if flt.matches(p))
    assert table.allowed_ids(flt).tolist() == expected, flt
    assert table.count(flt) == len(expected)


def test_mask_agrees_with_matches_on_random_filters() -> None:
    products = make_products(3000, seed=1)
    table = MetadataTable.from_products(products)
    assert len(table) == 3000
    by_row = {p.id: p for p in products}
    rng = random.Random(2)
    ids = [p.id for p in products]
    non_trivial = 0
    for _ in range(250):
        flt = random_filter(rng, ids)
        mask = table.mask(flt)
        expected = np.array([flt.matches(by_row[int(i)]) for i in table.ids])
        np.testing.assert_array_equal(mask, expected, err_msg=str(flt))
        non_trivial += 0 < mask.sum() < len(mask)
    assert non_trivial > 150  # the filters actually discriminate
    # Very selective and empty-result filters.
    assert_agrees(
        table,
        products,
        Filter(
            categories=("Shoes > Running > Trail",),
            brands=("nike",),
            colours=("BLACK",),
            sizes=("m",),
        ),
    )
    assert_agrees(table, products, Filter(brands=("Nobody",)))
    assert_agrees(table, products, Filter(in_stock=False))
    assert_agrees(table, products, Filter())


def test_mutations_keep_agreement(tmp_path: Path) -> None:
    products = make_products(1500, seed=3)
    table = MetadataTable.from_products(products)
    live = {p.id: p for p in products}
    rng = random.Random(4)

    removed = rng.sample(sorted(live), 400)
    assert table.remove([*removed, 10**9]) == 400
    assert table.remove(removed) == 0
    for pid in removed:
        del live[pid]

    # Change attributes of some survivors (including sizes) and add brand-new products.
    changed = []
    for pid in rng.sample(sorted(live), 300):
        old = live[pid]
        new = SimpleNamespace(
            **{
                **vars(old),
                "brand": rng.choice(BRANDS),
                "sizes": rng.sample(SIZES, 2),
                "stock": rng.choice([0, 3]),
                "price": round(rng.uniform(1, 500), 2),
            }
        )
        live[pid] = new
        changed.append(new)
    extra = make_products(200, seed=5)
    for p in extra:
        p.id += 100_000
        live[p.id] = p
    assert table.upsert([*changed, *extra]) == 500
    assert len(table) == len(live)
    assert sorted(table.ids.tolist()) == sorted(live)

    flts = [random_filter(rng, sorted(live)) for _ in range(100)]
    for flt in flts:
        assert_agrees(table, list(live.values()), flt)

    table.save(tmp_path)
    loaded = MetadataTable.load(tmp_path)
    for flt in flts[:40]:
        np.testing.assert_array_equal(loaded.mask(flt), table.mask(flt))
    loaded.upsert(make_products(3, seed=6))  # new vocabulary after load still works
    assert 4 in loaded and 7 in loaded


def test_category_prefix_boundaries() -> None:
    table = MetadataTable.from_products(
        SimpleNamespace(
            id=i, category=c, brand=None, colour=None, material=None, sizes=[], price=1.0, stock=1
        )
        for i, c in enumerate(["Shoes", "Shoes > Running", "Shoeshine", "SHOES > trail", None])
    )
    assert table.allowed_ids(Filter(categories=("shoes",))).tolist() == [0, 1, 3]
    assert table.allowed_ids(Filter(categories=("Shoes > Running",))).tolist() == [1]
    assert table.allowed_ids(Filter(categories=("Shoe",))).tolist() == []
    assert table.allowed_ids(Filter(categories=("Shoes >",))).tolist() == []


def test_filter_validation_and_normalisation() -> None:
    with pytest.raises(
        ValueError, match=r"price_min \(200.0\) must not exceed price_max \(100.0\)"
    ):
        Filter(price_min=200, price_max=100)
    with pytest.raises(ValueError, match="price_max must be a number"):
        Filter(price_max="cheap")  # type: ignore[arg-type]
    flt = Filter(brands="Nike", colours=["Red", " red ", "", None], exclude_ids=[3, 3, 4])  # type: ignore[arg-type]
    assert flt.brands == ("Nike",)
    assert flt.colours == ("Red", "red")  # kept as given (trimmed); compared case-insensitively
    assert flt.exclude_ids == (3, 4)
    assert Filter(price_min=5, price_max=5).price_min == 5.0
    assert Filter(in_stock=False).is_empty()
    assert not Filter().is_empty()  # in_stock=True is a constraint
    assert not Filter(in_stock=False, sizes=("M",)).is_empty()
    assert dataclasses.replace(flt, exclude_ids=(9,)).exclude_ids == (9,)
    assert Filter(brands=("nike",)) == Filter(brands=("nike",))
    assert hash(Filter(brands=("nike",))) == hash(Filter(brands=("nike",)))


def test_empty_table() -> None:
    table = MetadataTable()
    assert table.mask(Filter(brands=("x",))).shape == (0,)
    assert table.allowed_ids(None).dtype == np.int64
    assert table.remove([1]) == 0


def test_cached_masks_agree_with_matches_across_exclusions_and_mutations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A filter's mask is cached without its exclude_ids: the same base filters asked again
    with other exclusions, after callers changed what they got, and after the table changed,
    must still give exactly the reference answer; so must a cache bound that evicts."""
    import tailor.retrieval.filters as filters_module

    products = make_products(1200, seed=11)
    table = MetadataTable.from_products(products)
    live = {p.id: p for p in products}
    rng = random.Random(12)
    ids = sorted(live)
    bases = [dataclasses.replace(random_filter(rng, ids), exclude_ids=()) for _ in range(12)]

    def check_round() -> None:
        for _ in range(60):
            base = rng.choice(bases)
            pool = sorted(live)
            excluded = (*rng.sample(pool, rng.randint(0, 25)), 10**9)  # one unknown
            flt = dataclasses.replace(base, exclude_ids=excluded)
            mask = table.mask(flt)
            expected = np.array([flt.matches(live[int(i)]) for i in table.ids])
            np.testing.assert_array_equal(mask, expected, err_msg=str(flt))
            mask[:] = True  # the caller's copy: must not leak into the cache
            assert_agrees(table, list(live.values()), flt)

    check_round()
    # Change stock and prices under cached filters, remove some and add others.
    changed = []
    for pid in rng.sample(ids, 200):
        new = SimpleNamespace(
            **{**vars(live[pid]), "stock": rng.choice([0, 2]), "price": rng.uniform(1, 500)}
        )
        live[pid] = new
        changed.append(new)
    table.upsert(changed)
    check_round()
    for pid in rng.sample(sorted(live), 150):
        del live[pid]
        table.remove([pid])
    check_round()
    # A bound that holds about two masks: constant eviction, same answers.
    monkeypatch.setattr(filters_module, "MASK_CACHE_BYTES", 2 * len(live))
    table = MetadataTable.from_products(live.values())
    check_round()
    assert table._mask_bytes <= 2 * len(table)
