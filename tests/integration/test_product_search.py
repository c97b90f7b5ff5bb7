"""ProductSearch end to end with the real all-MiniLM-L6-v2 and a hand-made SQLite catalog."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tailor.retrieval import Embedder, Filter, Hit, ProductSearch
from tailor.retrieval.engine import PENDING_QUERIES, QUERY_CACHE_SIZE
from tailor.store import Product, make_session_factory, session_scope

pytestmark = pytest.mark.slow

# category -> (sizes, materials, brands, items: (title, description, tags))
CATALOG: dict[str, tuple[list[str], list[str], list[str], list[tuple[str, str, list[str]]]]] = {
    "Shoes > Running": (
        ["40", "41", "42", "43", "44"],
        ["mesh", "knit"],
        ["Stride", "Pacer", "Nimbus"],
        [
            (
                "Road Runner Cushioned Running Shoe",
                "Neutral running shoe with responsive foam "
                "cushioning for daily road runs and marathon training.",
                ["running", "road"],
            ),
            (
                "Trail Sprint Running Shoes",
                "Lugged outsole and rock plate for fast trail running on muddy mountain paths.",
                ["running", "trail"],
            ),
            (
                "Tempo Racer Running Flats",
                "Minimal lightweight racing shoe for tempo runs and 5k or 10k races.",
                ["running", "racing"],
            ),
            (
                "Marathon Glide Running Sneakers",
                "Long distance running sneaker with a carbon "
                "plate and breathable upper for race day.",
                ["running", "marathon"],
            ),
            (
                "Stability Jogger Running Shoes",
                "Supportive jogging shoe for runners who overpronate, with a firm medial post.",
                ["running", "jogging"],
            ),
        ],
    ),
    "Shoes > Hiking Boots": (
        ["40", "41", "42", "43", "44", "45"],
        ["leather", "suede"],
        ["Summit", "Ridge", "Alpine"],
        [
            (
                "Waterproof Leather Hiking Boots",
                "Full-grain leather boots with a waterproof "
                "membrane and ankle support for long hikes.",
                ["hiking", "waterproof"],
            ),
            (
                "Mountain Trek Boots",
                "Stiff-soled trekking boots for alpine scrambles and heavy backpacking loads.",
                ["trekking", "mountain"],
            ),
            (
                "Lightweight Day Hiker Boots",
                "Mid-cut hiking boot for day hikes on forest trails, light and flexible.",
                ["hiking", "lightweight"],
            ),
            (
                "Insulated Winter Snow Boots",
                "Warm insulated boots for snow and icy winter walks.",
                ["winter", "snow"],
            ),
            (
                "Backpacking Approach Boots",
                "Rugged approach boots with a sticky rubber sole for rocky hiking trails.",
                ["hiking", "rock"],
            ),
        ],
    ),
    "Shoes > Sandals": (
        ["38", "39", "40", "41", "42"],
        ["rubber", "leather"],
        ["Breeze", "Coast"],
        [
            (
                "Beach Flip Flops",
                "Simple rubber flip flops for the beach and the pool.",
                ["beach", "summer"],
            ),
            (
                "Leather Strap Sandals",
                "Classic leather sandals with adjustable straps for warm summer days.",
                ["summer", "casual"],
            ),
            (
                "Sport Hiking Sandals",
                "Open sport sandals with a grippy sole for river crossings.",
                ["water", "outdoor"],
            ),
            (
                "Cork Footbed Slides",
                "Comfortable slides with a contoured cork footbed.",
                ["casual", "comfort"],
            ),
            (
                "Platform Summer Sandals",
                "Chunky platform sandals for summer evenings.",
                ["summer", "fashion"],
            ),
        ],
    ),
    "Clothing > Jackets": (
        ["S", "M", "L", "XL"],
        ["nylon", "wool", "down"],
        ["Northwind", "Stormline", "Urbanite"],
        [
            (
                "Waterproof Rain Jacket",
                "Packable waterproof shell jacket with a hood that keeps you dry in heavy rain.",
                ["rain", "waterproof"],
            ),
            (
                "Down Puffer Jacket",
                "Warm insulated down puffer for cold winter days.",
                ["winter", "warm"],
            ),
            (
                "Wool Peacoat",
                "Double-breasted wool coat, smart and warm for the city.",
                ["formal", "winter"],
            ),
            (
                "Denim Trucker Jacket",
                "Classic denim jacket for casual layering.",
                ["casual", "denim"],
            ),
            (
                "Softshell Hiking Jacket",
                "Breathable windproof softshell jacket for hiking and climbing.",
                ["outdoor", "windproof"],
            ),
        ],
    ),
    "Clothing > T-Shirts": (
        ["XS", "S", "M", "L", "XL"],
        ["cotton", "polyester"],
        ["Basics Co", "Urbanite"],
        [
            (
                "Organic Cotton Crew Neck T-Shirt",
                "Soft everyday tee made from organic cotton.",
                ["basic", "everyday"],
            ),
            (
                "Graphic Print Tee",
                "Cotton t-shirt with a bold graphic print on the front.",
                ["graphic", "casual"],
            ),
            (
                "Performance Running Tee",
                "Moisture-wicking technical t-shirt for workouts.",
                ["sport", "quick-dry"],
            ),
            ("V-Neck Slim Fit T-Shirt", "Slim fitting v-neck tee for layering.", ["slim", "basic"]),
            (
                "Oversized Heavyweight Tee",
                "Boxy oversized t-shirt in heavyweight jersey.",
                ["streetwear", "oversized"],
            ),
        ],
    ),
    "Clothing > Dresses": (
        ["XS", "S", "M", "L"],
        ["silk", "linen", "cotton"],
        ["Maison Lune", "Florence"],
        [
            (
                "Floral Summer Maxi Dress",
                "Flowing maxi dress with a floral print for summer.",
                ["summer", "floral"],
            ),
            (
                "Little Black Cocktail Dress",
                "Elegant black cocktail dress for evening parties.",
                ["evening", "party"],
            ),
            ("Linen Shirt Dress", "Relaxed linen shirt dress with a belt.", ["casual", "linen"]),
            ("Silk Slip Dress", "Bias-cut silk slip dress with thin straps.", ["evening", "silk"]),
            ("Knitted Sweater Dress", "Cosy knitted midi dress for autumn.", ["autumn", "knit"]),
        ],
    ),
    "Accessories > Bags": (
        ["One Size"],
        ["leather", "canvas", "nylon"],
        ["Carryall", "Nomad"],
        [
            (
                "Leather Laptop Backpack",
                "Backpack with a padded laptop sleeve for commuting.",
                ["work", "laptop"],
            ),
            (
                "Canvas Tote Bag",
                "Roomy canvas tote for groceries and the beach.",
                ["tote", "casual"],
            ),
            ("Weekend Duffel Bag", "Large travel duffel for weekend trips.", ["travel", "weekend"]),
            (
                "Crossbody Phone Bag",
                "Small crossbody bag for phone and keys.",
                ["small", "crossbody"],
            ),
            (
                "Hiking Daypack 25L",
                "Lightweight daypack with hydration sleeve for hikes.",
                ["hiking", "outdoor"],
            ),
        ],
    ),
    "Accessories > Watches": (
        ["One Size"],
        ["steel", "leather", "silicone"],
        ["Chrono", "Tempus"],
        [
            (
                "Automatic Diver Watch",
                "Water resistant automatic dive watch with a steel bracelet.",
                ["diver", "automatic"],
            ),
            (
                "GPS Running Watch",
                "Sports watch with GPS, heart rate and running pace tracking.",
                ["gps", "fitness"],
            ),
            (
                "Minimalist Leather Strap Watch",
                "Slim dress watch with a leather strap.",
                ["dress", "minimal"],
            ),
            (
                "Digital Chronograph Watch",
                "Digital watch with stopwatch, alarm and backlight.",
                ["digital", "sport"],
            ),
            (
                "Smart Fitness Tracker",
                "Activity tracker counting steps, sleep and calories.",
                ["fitness", "smart"],
            ),
        ],
    ),
    "Home > Kitchen > Cookware": (
        ["One Size"],
        ["cast iron", "stainless steel", "ceramic"],
        ["Le Chef", "Hearth"],
        [
            (
                "Cast Iron Skillet",
                "Pre-seasoned cast iron frying pan for searing steak.",
                ["pan", "frying"],
            ),
            (
                "Non-Stick Frying Pan",
                "Ceramic non-stick pan for eggs and pancakes.",
                ["pan", "non-stick"],
            ),
            (
                "Enamelled Dutch Oven",
                "Heavy casserole pot for slow-cooked stews and bread.",
                ["pot", "stew"],
            ),
            (
                "Stainless Steel Saucepan Set",
                "Set of three saucepans with glass lids.",
                ["saucepan", "set"],
            ),
            (
                "Carbon Steel Wok",
                "Round-bottom wok for stir fry over high heat.",
                ["wok", "stir fry"],
            ),
        ],
    ),
    "Home > Bedding": (
        ["Single", "Double", "King"],
        ["cotton", "linen", "down"],
        ["Dreamwell", "Nordic Nest"],
        [
            (
                "Egyptian Cotton Sheet Set",
                "Crisp percale bed sheets in long staple cotton.",
                ["sheets", "cotton"],
            ),
            (
                "Linen Duvet Cover",
                "Stonewashed linen duvet cover, breathable and soft.",
                ["duvet", "linen"],
            ),
            ("Goose Down Pillow", "Soft goose down pillow for side sleepers.", ["pillow", "sleep"]),
            ("Weighted Blanket", "Heavy calming blanket for better sleep.", ["blanket", "sleep"]),
            (
                "Wool Mattress Topper",
                "Temperature regulating wool mattress topper.",
                ["mattress", "wool"],
            ),
        ],
    ),
}
COLOURS = ["black", "white", "navy", "red", "grey", "green"]


def build_products() -> list[Product]:
    """150 products: 10 categories x 5 items x 3 variants (brand, colour, price, stock)."""
    products: list[Product] = []
    counter = itertools.count(1)
    for category, (sizes, materials, brands, items) in CATALOG.items():
        for item_no, (title, description, tags) in enumerate(items):
            for variant in range(3):
                n = next(counter)
                p = Product(
                    sku=f"SKU-{n:04d}",
                    title=title,
                    description=description,
                    category=category,
                    brand=brands[(item_no + variant) % len(brands)],
                    price=round(15 + (n * 37) % 280 + 0.99, 2),
                    colour=COLOURS[(n + variant) % len(COLOURS)],
                    material=materials[(item_no + variant) % len(materials)],
                    sizes=sizes[variant % 2 :: 1 + variant % 2],
                    stock=0 if n % 7 == 0 else 1 + n % 9,
                    tags=tags,
                )
                p.refresh_hash()
                products.append(p)
    return products


@pytest.fixture
def factory(tmp_path: Path) -> sessionmaker[Session]:
    factory = make_session_factory(f"sqlite:///{tmp_path / 'catalog.db'}")
    with session_scope(factory) as s:
        s.add_all(build_products())
    return factory


@pytest.fixture
def products(factory: sessionmaker[Session]) -> dict[int, Product]:
    return all_products(factory)


def all_products(factory: sessionmaker[Session]) -> dict[int, Product]:
    with factory() as s:
        return {p.id: p for p in s.scalars(select(Product))}


def edit(factory: sessionmaker[Session], product_id: int, **changes: Any) -> None:
    with session_scope(factory) as s:
        p = s.get(Product, product_id)
        assert p is not None
        for name, value in changes.items():
            setattr(p, name, value)
        p.refresh_hash()


def ids_where(products: dict[int, Product], **attrs: Any) -> set[int]:
    return {pid for pid, p in products.items() if all(getattr(p, k) == v for k, v in attrs.items())}


def test_build_and_semantic_sanity(
    tmp_path: Path, factory: sessionmaker[Session], products: dict[int, Product], embedder: Embedder
) -> None:
    search = ProductSearch.open(tmp_path / "index", factory, embedder)
    assert search.last_open_report == "built 150"
    assert len(search) == 150
    manifest = (tmp_path / "index" / "manifest.json").read_text()
    assert '"backend": "flat"' in manifest and '"count": 150' in manifest

    hits = search.search("running shoes", k=10)
    assert len(hits) == 10 and all(isinstance(h, Hit) for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    top = [products[h.product_id].category for h in hits]
    assert top[:5] == ["Shoes > Running"] * 5, top
    assert top.count("Shoes > Running") >= 8

    checks = {
        "waterproof jacket for heavy rain": "Clothing > Jackets",
        "pan to fry eggs": "Home > Kitchen > Cookware",
        "something to sleep better at night": "Home > Bedding",
        "elegant dress for an evening party": "Clothing > Dresses",
        "boots for hiking in the mountains": "Shoes > Hiking Boots",
    }
    for query, category in checks.items():
        first = search.search(query, k=3)
        assert products[first[0].product_id].category == category, (query, first)
    # Text and vector queries agree.
    vec = embedder.encode_one("running shoes")
    assert search.search(vec, k=10) == hits
    # A repeated query text is embedded once (the same cached vector), and answers the same.
    cached = search._query_vector("running shoes")
    assert search._query_vector("running shoes") is cached
    assert np.allclose(cached[0], vec, atol=1e-6)
    assert search.search("running shoes", k=10) == hits
    # Without the cache (text_caches = false) every search embeds its text again.
    search.query_cache_size = 0
    fresh = search._query_vector("running shoes")
    assert fresh is not cached and np.allclose(fresh, cached, atol=1e-6)
    assert search._query_vector("running shoes") is not fresh
    assert search.search("running shoes", k=10) == hits


def test_a_query_embedded_ahead_is_taken_by_its_search(
    tmp_path: Path,
    factory: sessionmaker[Session],
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """embed_ahead: the search takes the vector embedded in the background (the model runs
    once per text, with or without the query cache) and answers as a plain search does."""
    search = ProductSearch.open(tmp_path / "index", factory, embedder)
    texts = ["wool hiking socks", "cast iron pan", "waterproof rain jacket"]
    expected = {t: search.search(embedder.encode_one(t), k=10) for t in texts}
    calls: list[str] = []
    real = embedder.encode_queries  # encode_one embeds through it too

    def spy(batch: list[str]) -> np.ndarray:
        calls.extend(batch)
        return real(batch)

    monkeypatch.setattr(embedder, "encode_queries", spy)
    for size in (QUERY_CACHE_SIZE, 0):
        search.query_cache_size = size
        calls.clear()
        for t in texts:
            search.embed_ahead(t)
            search.embed_ahead(t)  # already on its way: not embedded twice
        for t in texts:  # vectors embedded in one batch differ from single ones by ~1e-7
            got = search.search(t, k=10)
            assert [h.product_id for h in got] == [h.product_id for h in expected[t]]
            assert np.allclose([h.score for h in got], [h.score for h in expected[t]], atol=1e-5)
        assert sorted(calls) == sorted(texts)
        assert not search._pending
    # a text already cached is not embedded ahead; nothing waits for a search forever
    search.query_cache_size = QUERY_CACHE_SIZE
    search.search("linen shirt", k=3)
    calls.clear()
    search.embed_ahead("linen shirt")
    assert not search._pending and calls == []
    for i in range(PENDING_QUERIES + 10):
        search.embed_ahead(f"gift idea number {i}")
    assert len(search._pending) == PENDING_QUERIES


def test_a_failed_embedding_ahead_fails_the_search_as_a_plain_one_would(
    tmp_path: Path,
    factory: sessionmaker[Session],
    embedder: Embedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    search = ProductSearch.open(tmp_path / "index", factory, embedder)

    def broken(text: str) -> np.ndarray:
        raise RuntimeError(f"model failed on {text!r}")

    monkeypatch.setattr(embedder, "encode_one", broken)
    search.embed_ahead("running shoes")
    with pytest.raises(RuntimeError, match="model failed"):
        search.search("running shoes", k=3)
    assert not search._pending


def test_filters_are_respected(
    tmp_path: Path, factory: sessionmaker[Session], products: dict[int, Product], embedder: Embedder
) -> None:
    search = ProductSearch.open(tmp_path / "index", factory, embedder)
    filters = [
        Filter(),
        Filter(categories=("Shoes",)),
        Filter(categories=("shoes > running",), price_max=120),
        Filter(categories=("Clothing",), sizes=("M",), colours=("Black", "navy")),
        Filter(brands=("stride",), in_stock=False),
        Filter(exclude_brands=("Stride", "Pacer"), categories=("Shoes > Running",)),
        Filter(materials=("Leather",), price_min=50, price_max=200),
        Filter(exclude_colours=("black", "white", "navy", "red", "grey")),
        Filter(categories=("Home > Kitchen",), materials=("cast iron",), colours=("red",)),
        Filter(brands=("No Such Brand",)),
    ]
    for flt in filters:
        matching = {pid for pid, p in products.items() if flt.matches(p)}
        assert search.count(flt) == len(matching), flt
        for k in (1, 5, 40):
            hits = search.search("comfortable shoes for running", k=k, flt=flt)
            got = [h.product_id for h in hits]
            assert set(got) <= matching, flt
            assert len(got) == min(k, len(matching)), (flt, k)
            assert len(set(got)) == len(got)
    assert search.count() == 150
    assert search.count(Filter(in_stock=False)) == 150


def test_incremental_update_delete_and_add(
    tmp_path: Path, factory: sessionmaker[Session], products: dict[int, Product], embedder: Embedder
) -> None:
    index_dir = tmp_path / "index"
    search = ProductSearch.open(index_dir, factory, embedder)
    running = sorted(ids_where(products, category="Shoes > Running"))
    target = running[0]
    old_vector = search.vector(target)

    # Re-worded product: only it is re-embedded.
    edit(
        factory,
        target,
        title="Bamboo Chopping Board",
        description="Large bamboo cutting board for the kitchen.",
        tags=["kitchen", "bamboo"],
    )
    report = search.sync(factory)
    assert (report.added, report.updated, report.removed, report.embedded) == (0, 1, 0, 1)
    assert not np.allclose(search.vector(target), old_vector)
    assert search.search("bamboo cutting board", k=1)[0].product_id == target
    assert target not in {h.product_id for h in search.search("running shoes", k=10)}

    # Price-only change: metadata updated, no embedding needed.
    other = running[1]
    edit(factory, other, price=9.5, stock=3)
    report = search.sync(factory)
    assert (report.updated, report.embedded) == (1, 0)
    cheap = search.search("running shoes", k=5, flt=Filter(price_max=10))
    assert [h.product_id for h in cheap] == [other]

    # Delete from the catalog.
    with session_scope(factory) as s:
        s.delete(s.get(Product, running[2]))
    report = search.sync(factory)
    assert (report.removed, report.embedded) == (1, 0)
    assert running[2] not in search and len(search) == 149
    assert running[2] not in {h.product_id for h in search.search("running shoes", k=149)}
    with pytest.raises(KeyError, match=str(running[2])):
        search.vector(running[2])

    # Add to the catalog.
    with session_scope(factory) as s:
        p = Product(sku="NEW-1", title="Electric Standing Desk", description="Height adjustable "
                    "office desk with a motorised frame.", category="Home > Office", brand="Ergo",
                    price=399.0, stock=2, tags=["desk", "office"])  # fmt: skip
        p.refresh_hash()
        s.add(p)
        s.flush()
        new_id = p.id
    report = search.sync(factory)
    assert (report.added, report.updated, report.removed, report.embedded) == (1, 0, 0, 1)
    assert search.search("standing desk for my office", k=1)[0].product_id == new_id
    assert search.sync(factory).changed is False

    # The persisted index reflects every change.
    reopened = ProductSearch.open(index_dir, factory, embedder)
    assert reopened.last_open_report == "loaded"
    assert len(reopened) == 150
    np.testing.assert_allclose(reopened.vector(target), search.vector(target))


def test_direct_upsert_and_delete_api(
    tmp_path: Path, factory: sessionmaker[Session], products: dict[int, Product], embedder: Embedder
) -> None:
    search = ProductSearch.open(tmp_path / "index", factory, embedder)
    pid = next(iter(ids_where(products, category="Accessories > Watches")))
    with factory() as s:
        p = s.get(Product, pid)
        assert p is not None
        p.stock = 0  # out of stock now: default Filter() hides it
        p.refresh_hash()
        report = search.upsert_products([p])
    assert (report.updated, report.embedded) == (1, 0)
    assert pid not in {h.product_id for h in search.search("watch", k=150, flt=Filter())}
    assert search.delete_products([pid, 10**6]) == 1
    assert len(search) == 149
    search.save()
    # Saved state differs from the database (product still there): open() syncs it back.
    again = ProductSearch.open(tmp_path / "index", factory, embedder)
    assert again.last_open_report == "synced: +1 ~0 -0"


def test_stale_detection_and_persistence(
    tmp_path: Path, factory: sessionmaker[Session], products: dict[int, Product], embedder: Embedder
) -> None:
    index_dir = tmp_path / "index"
    first = ProductSearch.open(index_dir, factory, embedder)
    assert first.last_open_report == "built 150"
    query_hits = first.search("warm winter coat", k=8, flt=Filter(sizes=("M",)))

    second = ProductSearch.open(index_dir, factory, embedder)
    assert second.last_open_report == "loaded"
    assert second.search("warm winter coat", k=8, flt=Filter(sizes=("M",))) == query_hits
    some = next(iter(products))
    np.testing.assert_array_equal(second.vector(some), first.vector(some))

    # Catalog changed behind our back: new fingerprint -> incremental sync on open.
    a, b, c = sorted(products)[:3]
    edit(factory, a, title="Bamboo Cutting Board")
    edit(factory, b, price=1.0)
    with session_scope(factory) as s:
        s.delete(s.get(Product, c))
    third = ProductSearch.open(index_dir, factory, embedder)
    assert third.last_open_report == "synced: +0 ~2 -1"
    assert len(third) == 149
    assert ProductSearch.open(index_dir, factory, embedder).last_open_report == "loaded"

    # Another backend (or model) -> full rebuild, then loads.
    hnsw = ProductSearch.open(index_dir, factory, embedder, backend="hnsw")
    assert hnsw.last_open_report == "built 149"
    assert ProductSearch.open(index_dir, factory, embedder, backend="hnsw").last_open_report == (
        "loaded"
    )
    assert hnsw.search("bamboo cutting board", k=1)[0].product_id == a
    flt = Filter(categories=("Shoes",), price_max=100)
    assert {h.product_id for h in hnsw.search("shoes", 20, flt)} == {
        h.product_id for h in third.search("shoes", 20, flt)
    }
    # Only the live generation is kept on disk.
    assert len([d for d in index_dir.iterdir() if d.is_dir()]) == 1
    # A corrupt manifest means rebuild, not crash.
    (index_dir / "manifest.json").write_text("{not json")
    assert ProductSearch.open(index_dir, factory, embedder, "hnsw").last_open_report == "built 149"


def test_similar(
    tmp_path: Path, factory: sessionmaker[Session], products: dict[int, Product], embedder: Embedder
) -> None:
    search = ProductSearch.open(tmp_path / "index", factory, embedder)
    pid = min(ids_where(products, title="Cast Iron Skillet"))
    hits = search.similar(pid, k=5)
    assert pid not in {h.product_id for h in hits} and len(hits) == 5
    assert all(products[h.product_id].category == "Home > Kitchen > Cookware" for h in hits[:3])
    flt = Filter(categories=("Shoes",))
    hits = search.similar(pid, k=5, flt=flt)
    assert len(hits) == 5 and all(flt.matches(products[h.product_id]) for h in hits)
    with pytest.raises(KeyError):
        search.similar(10**6, k=3)


def test_concurrent_searches_during_updates(
    tmp_path: Path, factory: sessionmaker[Session], products: dict[int, Product], embedder: Embedder
) -> None:
    search = ProductSearch.open(tmp_path / "index", factory, embedder)
    flt = Filter(categories=("Clothing",))
    allowed = {pid for pid, p in products.items() if flt.matches(p)}
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                hits = search.search("jacket", k=10, flt=flt)
                assert len(hits) == 10 and {h.product_id for h in hits} <= allowed
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        victims = sorted(set(products) - allowed)[:20]
        for pid in victims:
            search.delete_products([pid])
        with factory() as s:
            search.upsert_products(s.scalars(select(Product).where(Product.id.in_(victims))))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert len(search) == 150
