"""Deterministic demo products with reviews.

Every product ``i`` draws from its own ``random.Random`` seeded with ``(seed, i)``, so output
depends only on ``seed`` and ``i``: ``generate_products(100)`` is a prefix of
``generate_products(10_000)``, and nothing touches the global random state. Dates count back
from the fixed :data:`REFERENCE_DATE`, never from "now".
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache

from tailor.demo.taxonomy import (
    CATEGORIES,
    SIZE_SYSTEMS,
    LeafType,
    brand_tier,
    leaf_brands,
    leaves,
    top_by_name,
)
from tailor.store.catalog import ProductRecord, ReviewRecord

__all__ = [
    "REFERENCE_DATE",
    "ProductRecord",
    "ReviewRecord",
    "generate_products",
    "make_rng",
    "product_sku",
    "review_author",
]

#: All demo dates lie before this instant (up to two years back), so output is reproducible.
REFERENCE_DATE = datetime(2026, 11, 1, tzinfo=UTC)

#: Share of products generated with zero stock.
OUT_OF_STOCK_SHARE = 0.08

#: Materials that only come in some colours (intersected with the leaf's colours when possible).
_MATERIAL_COLOURS: dict[str, tuple[str, ...]] = {
    "sterling silver": ("silver",),
    "gold-plated": ("gold",),
    "titanium": ("silver", "grey", "black"),
    "denim": ("blue", "navy", "black", "grey", "white"),
    "cork": ("beige", "brown"),
    "terracotta": ("brown", "beige", "orange"),
    "oak": ("brown", "beige", "white"),
    "walnut": ("brown",),
    "bamboo": ("beige", "brown", "green"),
    "rattan": ("beige", "brown"),
    "wood": ("brown", "beige", "white", "black", "grey"),
    "leather": ("black", "brown", "navy", "beige", "red", "grey", "white", "green", "pink"),
    "suede": ("brown", "beige", "grey", "navy", "black", "green"),
    "stainless steel": ("silver", "black", "grey", "white", "gold", "blue"),
    "steel": ("silver", "black", "grey", "white"),
}

_VERSIONS = ("2", "3", "4", "5", "7", "Pro", "Plus", "Lite", "Max", "X", "Sport", "Elite", "Go")

_FIRST_NAMES = (
    "Emma", "Olivia", "Ava", "Sophie", "Mia", "Isla", "Chloe", "Grace", "Lucy", "Hannah",
    "Amelia", "Zoe", "Léa", "Camille", "Lena", "Anna", "Sofia", "Giulia", "Lucía", "Elin",
    "Yuki", "Aoife", "Priya", "Maya", "Sara", "Noah", "Liam", "Oliver", "James", "Lucas",
    "Ethan", "Jack", "Leo", "Max", "Daniel", "Samuel", "Thomas", "Felix", "Hugo", "Lukas",
    "Matteo", "Pablo", "Javier", "Erik", "Sven", "Daan", "Kenji", "Haruto", "Conor", "Arjun",
)  # fmt: skip
_LAST_INITIALS = "ABCDEFGHJKLMNOPRSTVWY"

_PRAISE = (
    "Love this {thing}! The {a1} is excellent and the {a2} is spot on.",
    "Great {a1} and really good {a2}. Would buy again.",
    "Exactly as described. The {a1} exceeded my expectations.",
    "Best {thing} I've owned - superb {a1}.",
    "Really happy with it: {a1} and {a2} are both great.",
    "Five stars for the {a1}. No complaints at all.",
    "Fantastic {thing}. The {a1} is even better than the reviews said.",
)
_GOOD = (
    "Very good {thing}; only the {a2} could be a little better.",
    "Solid {a1} and nice quality overall. The {a2} is fine.",
    "Happy with this. Good {a1}, decent {a2}.",
    "Does the job well. The {a1} is great, the {a2} is just okay.",
)
_MIXED = (
    "Decent {thing}, but the {a1} could be better.",
    "The {a1} is good, the {a2} less so.",
    "Okay for the price. The {a1} is average.",
    "Not bad overall, though the {a1} took some getting used to.",
    "Mixed feelings: I like the {a2} but the {a1} is disappointing.",
)
_POOR = (
    "Disappointed. The {a1} was poor and the {a2} let it down.",
    "Returned it - the {a1} was not what I expected.",
    "Would not recommend: terrible {a1}.",
    "After a few weeks I'm much less impressed with the {a1}.",
    "Poor {a1} for the money. Expected much better.",
)


def make_rng(seed: int, *parts: object) -> random.Random:
    """A private generator for one (seed, purpose, index…) tuple; stable across Python
    versions because string seeds are hashed with SHA-512."""
    return random.Random(":".join(["tailor-demo", str(seed), *map(str, parts)]))


def product_sku(index: int) -> str:
    """The sku of demo product ``index`` (0-based): ``demo-000001`` for the first."""
    return f"demo-{index + 1:06d}"


def review_author(rng: random.Random) -> str:
    """A review author such as ``"Emma W."``."""
    return f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_INITIALS)}."


@cache
def _leaf_order(seed: int) -> tuple[LeafType, ...]:
    """A seed-shuffled order of all leaves: the first products cover every leaf once."""
    order = list(leaves())
    make_rng(seed, "leaf-order").shuffle(order)
    return tuple(order)


@cache
def _cum_weights() -> tuple[float, ...]:
    return tuple(itertools.accumulate(leaf.weight for leaf in leaves()))


def _pick_leaf(index: int, seed: int, rng: random.Random) -> LeafType:
    order = _leaf_order(seed)
    if index < len(order):
        return order[index]
    cum = _cum_weights()
    return leaves()[bisect.bisect_right(cum, rng.random() * cum[-1])]


def _ranked(rng: random.Random, options: Sequence[str]) -> str:
    """Pick from ``options``, earlier ones more often (weight 1 / (1 + 0.25 * rank))."""
    weights = [1.0 / (1.0 + 0.25 * i) for i in range(len(options))]
    return rng.choices(options, weights=weights)[0]


def _charm_price(raw: float, lo: float, hi: float) -> float:
    """Round a raw price to a shop-like ending (x.99, x9.99, x99.99) inside ``[lo, hi]``."""
    if raw < 100:
        price = math.floor(raw) + 0.99
    elif raw < 1000:
        price = math.floor(raw / 10) * 10 + 9.99
    else:
        price = math.floor(raw / 100) * 100 + 99.99
    if price > hi:
        price = math.floor(hi) - 0.01 if math.floor(hi) - 0.01 >= lo else hi
    return round(max(lo, price), 2)


#: Beta(a, b) shapes of a brand tier's position within a leaf's (log) price range: few
#: products sit at the very ends, budget brands lean low and premium brands high.
_TIER_SHAPES: dict[str, tuple[float, float]] = {
    "budget": (1.5, 3.0),
    "mid": (1.8, 2.0),
    "premium": (3.0, 1.5),
}


def _price(rng: random.Random, leaf: LeafType, brand: str) -> float:
    lo, hi = leaf.price
    u = rng.betavariate(*_TIER_SHAPES[brand_tier(brand)])
    return _charm_price(lo * (hi / lo) ** u, lo, hi)


def _colour_for(rng: random.Random, leaf: LeafType, material: str | None) -> str | None:
    if not leaf.colours:
        return None
    allowed = _MATERIAL_COLOURS.get(material or "")
    options = [c for c in leaf.colours if allowed is None or c in allowed] or list(leaf.colours)
    return _ranked(rng, options)


def _sizes(rng: random.Random, system: str) -> list[str]:
    values = SIZE_SYSTEMS[system]
    if not values:
        return []
    quarter = len(values) // 4
    start = rng.randint(0, quarter)
    end = rng.randint(len(values) - quarter, len(values))
    return list(values[start:end])


def _lower_word(text: str) -> str:
    """Lower-case the title-cased parts of a phrase, keep acronyms ("4K", "TV", "MagSafe")."""

    def part(p: str) -> str:
        return p.lower() if p[:1].isupper() and (p[1:].islower() or len(p) == 1) else p

    return " ".join("-".join(part(p) for p in word.split("-")) for word in text.split(" "))


def _is_pair(leaf: LeafType) -> bool:
    """Plural-only types ("Headphones", "Jeans") are described as "a pair of …"."""
    return leaf.singular == leaf.name and leaf.name.endswith("s") and not leaf.name.endswith("ss")


def _with_article(adjective: str, noun: str, pair: bool) -> str:
    if pair:
        return f"a pair of {adjective} {noun}"
    first = adjective.split("-")[0].split(" ")[0]
    if first.isupper() or first[:1].isdigit():  # acronyms and numbers: "an LTE", "a USB"
        vowel_sound = first[:1] in "AEFHILMNORSX8" or first.startswith(("11", "18"))
    else:
        vowel_sound = first[:1].lower() in "aeiou"
    article = "an" if vowel_sound else "a"
    return f"{article} {adjective} {noun}"


def _thing(leaf: LeafType) -> str:
    noun = _lower_word(leaf.singular)
    return f"pair of {noun}" if _is_pair(leaf) else noun


def _description(
    rng: random.Random,
    leaf: LeafType,
    brand: str,
    model: str,
    adjective: str,
    colour: str | None,
    material: str | None,
    sizes: list[str],
) -> tuple[str, list[str]]:
    features = rng.sample(leaf.features, k=min(3, len(leaf.features)))
    noun = _lower_word(leaf.singular)
    opening = _with_article(_lower_word(adjective), noun, _is_pair(leaf))
    sentences = [f"The {model} from {brand} is {opening} {rng.choice(leaf.uses)}."]
    body = f"it {features[0]} and {features[1]}" if len(features) > 1 else f"it {features[0]}"
    if material and colour:
        sentences.append(f"Made from {material} in {colour}, {body}.")
    elif material:
        sentences.append(f"Made from {material}, {body}.")
    elif colour:
        sentences.append(f"Finished in {colour}, {body}.")
    else:
        sentences.append(f"{body[0].upper()}{body[1:]}.")
    if len(features) > 2 and rng.random() < 0.6:
        extra = features[2]
        also = f"is also {extra[3:]}" if extra.startswith("is ") else f"also {extra}"
        sentences.append(f"It {also}.")
    if sizes:
        span = sizes[0] if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
        sentences.append(f"Available in sizes {span}.")
    return " ".join(sentences), features


def _title(
    rng: random.Random,
    leaf: LeafType,
    brand: str,
    model: str,
    adjective: str,
    colour: str | None,
    material: str | None,
) -> str:
    roll = rng.random()
    if roll < 0.45:
        return f"{brand} {model} {adjective} {leaf.singular}"
    if roll < 0.7:
        return f"{brand} {model} {rng.choice(_VERSIONS)} {leaf.singular}"
    if roll < 0.88 and colour:
        return f"{brand} {adjective} {leaf.singular}, {colour.title()}"
    if material:
        return f"{brand} {model} {adjective} {leaf.singular} ({material.title()})"
    return f"{brand} {model} {leaf.singular}"


def _review_text(rng: random.Random, leaf: LeafType, rating: int) -> str:
    pool = {5: _PRAISE, 4: _GOOD + _PRAISE[:3], 3: _MIXED}.get(rating, _POOR)
    a1, a2 = rng.sample(leaf.aspects, 2) if len(leaf.aspects) > 1 else (leaf.aspects[0],) * 2
    text = rng.choice(pool).format(thing=_thing(leaf), a1=a1, a2=a2)
    if rating == 5 and rng.random() < 0.3:
        uses = [u for u in leaf.uses if u.startswith("for ")]
        if uses:
            text += f" Perfect {rng.choice(uses)}."
    return text


def _reviews(rng: random.Random, leaf: LeafType, rating: float, n: int) -> list[ReviewRecord]:
    out = []
    for _ in range(n):
        stars = int(min(5, max(1, round(rng.gauss(rating, 0.9)))))
        seconds = rng.randrange(1, 730 * 86_400)
        out.append(
            ReviewRecord(
                rating=stars,
                text=_review_text(rng, leaf, stars),
                author=review_author(rng),
                created_at=REFERENCE_DATE - timedelta(seconds=seconds),
            )
        )
    out.sort(key=lambda r: r.created_at or REFERENCE_DATE)
    return out


def make_product(index: int, seed: int = 42) -> ProductRecord:
    """Demo product number ``index`` (0-based) for ``seed``; pure and deterministic."""
    rng = make_rng(seed, "product", index)
    leaf = _pick_leaf(index, seed, rng)
    top = top_by_name(leaf.top)
    brand = rng.choice(leaf_brands(leaf))
    model = rng.choice(top.models)
    adjective = rng.choice(leaf.adjectives)
    material = _ranked(rng, leaf.materials) if leaf.materials else None
    colour = _colour_for(rng, leaf, material)
    sizes = _sizes(rng, leaf.sizes)
    price = _price(rng, leaf, brand)

    raw = rng.uniform(1.4, 3.4) if rng.random() < 0.07 else rng.gauss(4.15, 0.38)
    rating = round(min(5.0, max(1.0, raw)), 1)
    review_count = min(12_000, int(rng.lognormvariate(3.0, 1.4)))
    n_reviews = min(review_count, rng.choices(range(6), weights=(10, 15, 20, 20, 18, 17))[0])
    stock = 0 if rng.random() < OUT_OF_STOCK_SHARE else min(500, 1 + int(rng.expovariate(1 / 40)))

    title = _title(rng, leaf, brand, model, adjective, colour, material)
    description, features = _description(
        rng, leaf, brand, model, adjective, colour, material, sizes
    )
    tags = sorted(set(rng.sample(leaf.tags, k=min(len(leaf.tags), rng.randint(2, 4)))))
    return ProductRecord(
        sku=product_sku(index),
        title=title,
        description=description,
        category=leaf.path,
        brand=brand,
        price=price,
        currency="USD",
        colour=colour,
        material=material,
        sizes=sizes,
        rating=rating,
        review_count=review_count,
        stock=stock,
        tags=tags,
        image_url=None,
        attributes={"model": model, "features": features, "tier": brand_tier(brand)},
        source="demo",
        reviews=_reviews(rng, leaf, rating, n_reviews),
    )


def generate_products(n: int, seed: int = 42) -> Iterator[ProductRecord]:
    """``n`` demo products; the same ``n`` and ``seed`` give identical records, and a smaller
    ``n`` gives a prefix of a larger one. The first products cover every leaf type once."""
    if n < 0:
        raise ValueError(f"n must be zero or more, got {n}")
    for index in range(n):
        yield make_product(index, seed)


def top_level_names() -> list[str]:
    """Names of the top-level categories, in taxonomy order."""
    return [top.name for top in CATEGORIES]
