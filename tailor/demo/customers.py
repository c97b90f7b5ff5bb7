"""Deterministic demo customers and their purchase / view histories.

Each customer has hidden preferences (favourite categories and brands, price sensitivity,
how often they buy, whether they stopped buying), and the event history is drawn from them,
so behavioural segmentation (recency, frequency, monetary value) finds real structure. The
preferences are kept in ``attributes["demo_preferences"]`` as ground truth for evaluation.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tailor.demo.generator import REFERENCE_DATE, make_rng
from tailor.demo.taxonomy import CATEGORIES, leaf_brands, leaf_by_path, top_by_name
from tailor.store.catalog import ProductRecord

__all__ = [
    "AGE_BANDS",
    "COUNTRIES",
    "RESTOCK",
    "STYLES",
    "CustomerRecord",
    "EventRecord",
    "RestockRule",
    "customer_external_id",
    "demo_sender_id",
    "generate_customers",
    "generate_events",
]

#: Age bands with their share of customers.
AGE_BANDS: dict[str, int] = {
    "18-24": 14,
    "25-34": 26,
    "35-44": 22,
    "45-54": 17,
    "55-64": 12,
    "65+": 9,
}

#: Country → (share, name-pool key, {region: climate}).
COUNTRIES: dict[str, tuple[int, str, dict[str, str]]] = {
    "United States": (
        25,
        "en",
        {
            "California": "warm",
            "Texas": "hot",
            "New York": "temperate",
            "Washington": "rainy",
            "Florida": "hot",
            "Illinois": "cold",
            "Colorado": "cold",
        },
    ),
    "United Kingdom": (
        15,
        "en",
        {"England": "temperate", "Scotland": "cold", "Wales": "rainy", "Northern Ireland": "rainy"},
    ),
    "Canada": (
        8,
        "en",
        {"Ontario": "cold", "Quebec": "cold", "British Columbia": "rainy", "Alberta": "cold"},
    ),
    "Australia": (
        7,
        "en",
        {
            "New South Wales": "warm",
            "Victoria": "temperate",
            "Queensland": "hot",
            "Western Australia": "hot",
        },
    ),
    "Germany": (
        9,
        "de",
        {
            "Bavaria": "temperate",
            "Berlin": "temperate",
            "Hamburg": "rainy",
            "North Rhine-Westphalia": "temperate",
        },
    ),
    "France": (
        8,
        "fr",
        {
            "Île-de-France": "temperate",
            "Provence-Alpes-Côte d'Azur": "warm",
            "Brittany": "rainy",
            "Auvergne-Rhône-Alpes": "cold",
        },
    ),
    "Spain": (
        6,
        "es",
        {"Madrid": "hot", "Catalonia": "warm", "Andalusia": "hot", "Galicia": "rainy"},
    ),
    "Italy": (
        6,
        "it",
        {"Lombardy": "temperate", "Lazio": "warm", "Sicily": "hot", "Tuscany": "warm"},
    ),
    "Netherlands": (
        5,
        "nl",
        {"North Holland": "rainy", "South Holland": "rainy", "Utrecht": "temperate"},
    ),
    "Sweden": (4, "sv", {"Stockholm": "cold", "Västra Götaland": "cold", "Skåne": "temperate"}),
    "Japan": (
        4,
        "ja",
        {"Tokyo": "temperate", "Osaka": "warm", "Hokkaido": "cold", "Okinawa": "hot"},
    ),
    "Ireland": (3, "en", {"Dublin": "rainy", "Cork": "rainy", "Galway": "rainy"}),
}

_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # pool: (female first names, male first names, last names)
    "en": (
        ("Emma", "Olivia", "Ava", "Sophie", "Grace", "Chloe", "Lucy", "Hannah", "Amelia", "Zoe",
         "Isla", "Mia", "Ella", "Ruby", "Aoife", "Priya"),
        ("Noah", "Liam", "Oliver", "James", "Jack", "Ethan", "Lucas", "Daniel", "Samuel",
         "Thomas", "Harry", "Leo", "Conor", "Arjun", "Mason", "Owen"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Taylor", "Wilson", "Davies", "Evans",
         "Thomas", "Walker", "Wright", "Murphy", "Kelly", "Patel", "Nguyen", "Clarke", "Hughes"),
    ),
    "de": (
        ("Anna", "Lena", "Mia", "Hannah", "Laura", "Lea", "Emilia", "Clara", "Marie", "Sophie"),
        ("Lukas", "Felix", "Maximilian", "Paul", "Jonas", "Leon", "Elias", "Finn", "Noah", "Ben"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Hoffmann", "Schulz", "Koch", "Richter"),
    ),
    "fr": (
        ("Léa", "Camille", "Manon", "Chloé", "Inès", "Jade", "Louise", "Emma", "Juliette", "Zoé"),
        ("Hugo", "Louis", "Gabriel", "Arthur", "Jules", "Lucas", "Nathan", "Théo", "Raphaël"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
         "Leroy", "Moreau", "Laurent", "Lefèvre"),
    ),
    "es": (
        ("Lucía", "Sofía", "María", "Martina", "Paula", "Julia", "Valeria", "Carmen", "Elena"),
        ("Pablo", "Javier", "Alejandro", "Daniel", "Hugo", "Álvaro", "Diego", "Mario", "Adrián"),
        ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
         "Gómez", "Ruiz"),
    ),
    "it": (
        ("Giulia", "Sofia", "Aurora", "Alice", "Ginevra", "Emma", "Giorgia", "Chiara", "Sara"),
        ("Matteo", "Leonardo", "Francesco", "Alessandro", "Lorenzo", "Andrea", "Marco", "Luca"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
         "Marino", "Greco"),
    ),
    "nl": (
        ("Emma", "Julia", "Sophie", "Tess", "Anna", "Fleur", "Sanne", "Lotte", "Eva"),
        ("Daan", "Sem", "Lucas", "Levi", "Finn", "Milan", "Bram", "Thijs", "Ruben"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer",
         "de Boer", "Mulder"),
    ),
    "sv": (
        ("Elin", "Alice", "Maja", "Ebba", "Wilma", "Saga", "Astrid", "Freja", "Linnea"),
        ("Erik", "Sven", "Oscar", "William", "Hugo", "Axel", "Lucas", "Elias", "Nils"),
        ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
         "Persson", "Svensson", "Lindberg"),
    ),
    "ja": (
        ("Yuki", "Haruka", "Aoi", "Sakura", "Hina", "Yui", "Mei", "Rin", "Mio"),
        ("Haruto", "Kenji", "Sota", "Ren", "Yuto", "Hiroshi", "Takumi", "Daiki", "Riku"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura",
         "Kobayashi", "Kato"),
    ),
}  # fmt: skip

#: Shopping style → the top-level categories such shoppers favour, most favoured first.
STYLES: dict[str, tuple[str, ...]] = {
    "sporty": ("Shoes", "Sports", "Watches", "Clothing", "Health"),
    "classic": ("Clothing", "Shoes", "Accessories", "Jewellery", "Home"),
    "minimalist": ("Home", "Furniture", "Office", "Bags", "Computers"),
    "trendy": ("Clothing", "Beauty", "Jewellery", "Phones", "Accessories"),
    "outdoorsy": ("Outdoors", "Shoes", "Clothing", "Garden", "Bags"),
    "practical": ("Kitchen", "Home", "Computers", "Office", "Garden"),
    "luxury": ("Jewellery", "Watches", "Beauty", "Bags", "Furniture"),
    "techie": ("Electronics", "Computers", "Phones", "Audio", "Gaming"),
}

#: How often a customer buys: share of customers and (min, max) purchases over two years.
_ACTIVITY: dict[str, tuple[int, tuple[int, int]]] = {
    "browser": (8, (0, 0)),
    "one-off": (25, (1, 2)),
    "occasional": (35, (3, 6)),
    "regular": (22, (7, 14)),
    "loyal": (10, (15, 35)),
}

#: Price sensitivity bands → (share, sensitivity range; 1.0 always picks the cheapest option).
_PRICE_BANDS: dict[str, tuple[int, tuple[float, float]]] = {
    "budget": (35, (0.7, 1.0)),
    "mid": (45, (0.35, 0.7)),
    "premium": (20, (0.0, 0.35)),
}

_HISTORY_DAYS = 730


@dataclass(frozen=True)
class RestockRule:
    """A consumable leaf category: bought again about every ``days`` days by those who use it,
    and started by buying it or one of the ``starters`` (the durable it is used with)."""

    days: float
    starters: tuple[str, ...] = ()


#: Consumable leaf path → how its users restock (ground truth of the demo's replenishment).
RESTOCK: dict[str, RestockRule] = {
    "Food & Drink > Coffee": RestockRule(21, ("Kitchen > Coffee Machines",)),
    "Food & Drink > Tea": RestockRule(30),
    "Food & Drink > Chocolate": RestockRule(28),
    "Health > Vitamins": RestockRule(30),
    "Health > Supplements": RestockRule(30),
    "Beauty > Skincare": RestockRule(45),
    "Beauty > Haircare": RestockRule(40),
    "Home > Candles": RestockRule(50),
    "Office > Pens": RestockRule(60),
}

#: Chance that a customer who bought a consumable (or its durable) keeps restocking it, by
#: activity; a one-off shopper rarely becomes a regular restocker.
_RESTOCK_ADOPTION: dict[str, float] = {
    "browser": 0.0,
    "one-off": 0.4,
    "occasional": 0.6,
    "regular": 0.8,
    "loyal": 0.9,
}

#: Chance, at each restock, that the customer stops restocking (buys elsewhere, gives up).
_RESTOCK_LAPSE = 0.02


@dataclass
class CustomerRecord:
    """A demo customer as plain data (matched by ``external_id`` when loading)."""

    external_id: str
    name: str
    email: str
    age_band: str
    gender: str | None
    country: str
    region: str
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: datetime = REFERENCE_DATE

    @property
    def preferences(self) -> dict[str, Any]:
        """The hidden preferences the history was drawn from (ground truth)."""
        return dict(self.attributes.get("demo_preferences", {}))


@dataclass
class EventRecord:
    """One demo event; product and customer are named by sku and external id."""

    customer_external_id: str
    kind: str
    product_sku: str
    created_at: datetime
    value: float | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def customer_external_id(index: int) -> str:
    """External id of demo customer ``index`` (0-based): ``cust-0001`` for the first."""
    return f"cust-{index + 1:04d}"


def demo_sender_id(external_id: str) -> str:
    """The ``sender_id`` demo events carry, so they are told apart from real conversations."""
    return f"demo:{external_id}"


def _weighted(rng: Any, table: dict[str, Any]) -> str:
    keys = list(table)
    weights = [v[0] if isinstance(v, tuple) else v for v in table.values()]
    return rng.choices(keys, weights=weights)[0]


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _favourites(rng: Any, style: str, age_band: str) -> list[str]:
    """2-4 favourite leaf paths drawn mostly from the style's top categories."""
    tops = list(STYLES[style])
    if age_band in ("25-34", "35-44") and rng.random() < 0.25:
        tops.insert(1, "Baby")
    if rng.random() < 0.25:
        tops.insert(2, "Pet Supplies")
    if rng.random() < 0.2:
        tops.append(rng.choice([t.name for t in CATEGORIES]))
    chosen: list[str] = []
    for _ in range(rng.randint(2, 4)):
        top = top_by_name(tops[min(int(rng.expovariate(0.6)), len(tops) - 1)])
        path = rng.choice(top.leaves).path
        if path not in chosen:
            chosen.append(path)
    return chosen


def _make_customer(index: int, seed: int) -> CustomerRecord:
    rng = make_rng(seed, "customer", index)
    country = _weighted(rng, COUNTRIES)
    _, pool, regions = COUNTRIES[country]
    region = rng.choice(sorted(regions))
    climate = regions[region]
    roll = rng.random()
    gender = "female" if roll < 0.48 else "male" if roll < 0.94 else None
    female, male, last_names = _NAMES[pool]
    firsts = female if gender == "female" else male if gender == "male" else female + male
    first, last = rng.choice(firsts), rng.choice(last_names)
    external_id = customer_external_id(index)
    email = f"{_ascii(first)}.{_ascii(last)}.{index + 1}@example.com"
    age_band = _weighted(rng, AGE_BANDS)
    style = rng.choice(sorted(STYLES))
    if climate in ("cold", "rainy") and rng.random() < 0.3:
        style = "outdoorsy"
    favourites = _favourites(rng, style, age_band)
    brand_pool = sorted({b for path in favourites for b in leaf_brands(leaf_by_path(path))})
    favourite_brands = rng.sample(brand_pool, k=min(len(brand_pool), rng.randint(1, 3)))
    price_band = _weighted(rng, _PRICE_BANDS)
    if style == "luxury" and rng.random() < 0.6:
        price_band = "premium"
    lo, hi = _PRICE_BANDS[price_band][1]
    activity = _weighted(rng, _ACTIVITY)
    days_known = rng.uniform(14, _HISTORY_DAYS)
    first_seen = REFERENCE_DATE - timedelta(days=days_known)
    churn_chance = 0.55 if activity in ("browser", "one-off") else 0.2
    churned = days_known > 90 and rng.random() < churn_chance
    preferences = {
        "favourite_categories": favourites,
        "favourite_brands": favourite_brands,
        "price_band": price_band,
        "price_sensitivity": round(rng.uniform(lo, hi), 2),
        "activity": activity,
        "churned": churned,
    }
    return CustomerRecord(
        external_id=external_id,
        name=f"{first} {last}",
        email=email,
        age_band=age_band,
        gender=gender,
        country=country,
        region=region,
        attributes={"climate": climate, "style": style, "demo_preferences": preferences},
        created_at=first_seen.replace(microsecond=0),
    )


def generate_customers(n: int, seed: int = 42) -> list[CustomerRecord]:
    """``n`` demo customers (``cust-0001``…); same ``n`` and ``seed`` → identical records."""
    if n < 0:
        raise ValueError(f"n must be zero or more, got {n}")
    return [_make_customer(i, seed) for i in range(n)]


def _pick_product(
    rng: Any,
    pool: Sequence[ProductRecord],
    favourite_brands: Sequence[str],
    sensitivity: float,
) -> ProductRecord:
    """Among a few candidates, prefer favourite brands, then a price matching sensitivity."""
    liked = [p for p in pool if p.brand in favourite_brands]
    source = liked if liked and rng.random() < 0.6 else pool
    candidates = sorted(rng.sample(list(source), k=min(6, len(source))), key=lambda p: p.price)
    position = min(1.0, max(0.0, 1.0 - sensitivity + rng.gauss(0, 0.12)))
    return candidates[round(position * (len(candidates) - 1))]


def _at(rng: Any, start: datetime, end: datetime) -> datetime:
    span = max(1, int((end - start).total_seconds()))
    return (start + timedelta(seconds=rng.randrange(span))).replace(microsecond=0)


def generate_events(
    customers: Sequence[CustomerRecord], products: Sequence[ProductRecord], seed: int = 42
) -> list[EventRecord]:
    """Purchase and view events for ``customers`` over ``products``, drawn from each
    customer's hidden preferences; deterministic for the same inputs and ``seed``.

    A purchase has ``value`` = the product's price; views come before purchases of the same
    category and as extra browsing. Times lie in the two years before :data:`REFERENCE_DATE`.
    """
    by_path: dict[str, list[ProductRecord]] = defaultdict(list)
    for p in products:
        by_path[p.category].append(p)
    if not by_path:
        return []
    paths = sorted(by_path)
    events: list[EventRecord] = []
    for customer in customers:
        prefs = customer.preferences
        rng = make_rng(seed, "events", customer.external_id)
        start = customer.created_at
        if prefs.get("churned"):
            end = start + (REFERENCE_DATE - start) * rng.uniform(0.1, 0.6)
        else:
            end = REFERENCE_DATE - timedelta(days=rng.uniform(0, 20))
        end = max(end, start + timedelta(hours=1))
        favourites = [p for p in prefs.get("favourite_categories", []) if p in by_path]
        brands = prefs.get("favourite_brands", [])
        sensitivity = float(prefs.get("price_sensitivity", 0.5))
        lo, hi = _ACTIVITY[prefs.get("activity", "occasional")][1]
        n_purchases = rng.randint(lo, hi)

        def choose_path(rng: Any = rng, favourites: list[str] = favourites) -> str:
            if favourites and rng.random() < 0.75:
                return str(rng.choice(favourites))
            return str(rng.choice(paths))

        own: list[EventRecord] = []
        for k in range(n_purchases):
            pool = by_path[choose_path()]
            bought = _pick_product(rng, pool, brands, sensitivity)
            when = _at(rng, start, end)
            for _ in range(rng.randint(1, 3)):
                seen = bought if rng.random() < 0.5 else rng.choice(pool)
                before = when - timedelta(minutes=rng.uniform(2, 3 * 24 * 60))
                own.append(
                    EventRecord(
                        customer.external_id,
                        "view",
                        seen.sku,
                        max(before, start).replace(microsecond=0),
                        None,
                        {"source": "demo"},
                    )
                )
            own.append(
                EventRecord(
                    customer.external_id,
                    "purchase",
                    bought.sku,
                    when,
                    bought.price,
                    {"source": "demo", "quantity": 1, "order": k + 1},
                )
            )
        n_browse = (
            rng.randint(3, 15) if n_purchases == 0 else int(n_purchases * rng.uniform(0.5, 2))
        )
        for _ in range(n_browse + rng.randint(0, 4)):
            pool = by_path[choose_path()]
            own.append(
                EventRecord(
                    customer.external_id,
                    "view",
                    rng.choice(pool).sku,
                    _at(rng, start, end),
                    None,
                    {"source": "demo"},
                )
            )
        own.extend(_restock_events(customer, own, end, by_path, seed))
        own.sort(key=lambda e: (e.created_at, e.kind, e.product_sku))
        events.extend(own)
    return events


def _restock_events(
    customer: CustomerRecord,
    history: Sequence[EventRecord],
    end: datetime,
    by_path: dict[str, list[ProductRecord]],
    seed: int,
) -> list[EventRecord]:
    """Replenishment purchases of the consumables in :data:`RESTOCK` that ``customer`` took up.

    A customer who bought a consumable, or the durable that starts it, keeps buying it at
    their own interval (the category's typical one with a per-customer factor and a little
    jitter at each restock) until their history ends (``end``: when a churned customer
    stopped) or they lapse. Drawn from a separate stream (``"restock"``), so the rest of the
    history stays the same for the same seed.
    """
    prefs = customer.preferences
    adoption = _RESTOCK_ADOPTION.get(str(prefs.get("activity", "occasional")), 0.5)
    if adoption <= 0.0:
        return []
    rng = make_rng(seed, "restock", customer.external_id)
    stop = end if prefs.get("churned") else REFERENCE_DATE - timedelta(seconds=1)
    category_of = {p.sku: p.category for pool in by_path.values() for p in pool}
    by_sku = {p.sku: p for pool in by_path.values() for p in pool}
    purchases = [e for e in history if e.kind == "purchase"]
    brands = prefs.get("favourite_brands", [])
    sensitivity = float(prefs.get("price_sensitivity", 0.5))
    out: list[EventRecord] = []
    for path in sorted(RESTOCK):
        pool = by_path.get(path)
        if not pool:
            continue
        rule = RESTOCK[path]
        starts = sorted(
            (e for e in purchases if category_of.get(e.product_sku) in (path, *rule.starters)),
            key=lambda e: e.created_at,
        )
        if not starts or rng.random() >= adoption:
            continue
        first = starts[0]
        interval = rule.days * min(2.0, max(0.5, rng.lognormvariate(0.0, 0.25)))
        if category_of.get(first.product_sku) == path:
            product = by_sku[first.product_sku]
        else:
            product = _pick_product(rng, pool, brands, sensitivity)
        when = first.created_at
        while True:
            when = when + timedelta(days=interval * max(0.6, rng.gauss(1.0, 0.1)))
            when = when.replace(microsecond=0)
            if when > stop or rng.random() < _RESTOCK_LAPSE:
                break
            if rng.random() < 0.1:  # now and then a different product of the same kind
                product = _pick_product(rng, pool, brands, sensitivity)
            out.append(
                EventRecord(
                    customer.external_id,
                    "purchase",
                    product.sku,
                    when,
                    product.price,
                    {"source": "demo", "quantity": 1, "restock": True},
                )
            )
    return out
