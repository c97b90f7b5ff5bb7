"""How turns change the shopping criteria (pure logic, no Rasa, no model)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from tailor.nlu.vocab import Vocabulary
from tailor.recommend.criteria import Criteria, Entity, ShownProduct, apply_turn, shown_from_slot

VOCAB = Vocabulary(
    brands=["Nike", "Adidas", "Brooks", "Levi's", "Sony"],
    colours=["blue", "red", "black", "white", "grey"],
    materials=["leather", "mesh", "cotton"],
    categories=[
        "Shoes > Running Shoes",
        "Shoes > Boots",
        "Clothing > Jackets",
        "Audio > Headphones",
    ],
)


def ent(text: str, entity: str, span: str, value: str | None = None) -> Entity:
    start = text.index(span)
    return Entity(entity=entity, value=value or span, start=start, end=start + len(span))


def test_first_request_sets_type_and_budget() -> None:
    text = "I need running shoes under $80"
    turn = apply_turn(
        Criteria(),
        "ask_recommendation",
        text,
        [ent(text, "product_type", "running shoes"), ent(text, "price", "under $80")],
        VOCAB,
    )
    c = turn.criteria
    assert c.category == "Shoes > Running Shoes"
    assert c.price_max == 80 and c.price_min is None
    assert turn.mode == "new" and turn.reset_seen
    flt = c.to_filter()
    assert flt.categories == ("Shoes > Running Shoes",) and flt.price_max == 80 and flt.in_stock


def test_cheaper_goes_below_everything_shown() -> None:
    start = Criteria(product_type="running shoes", category="Shoes > Running Shoes", price_max=80)
    shown = [ShownProduct(1, 61.0), ShownProduct(2, 75.5), ShownProduct(3, 79.0)]
    turn = apply_turn(
        start, "refine", "show me cheaper ones", [Entity("refinement", "cheaper")], VOCAB, shown
    )
    assert turn.criteria.price_max == pytest.approx(60.99)
    assert turn.criteria.category == start.category


def test_pricier_goes_above_everything_shown_and_drops_low_cap() -> None:
    start = Criteria(category="Shoes > Running Shoes", price_max=80)
    shown = [ShownProduct(1, 61.0), ShownProduct(2, 79.0)]
    turn = apply_turn(
        start, "refine", "something more expensive", [Entity("refinement", "pricier")], VOCAB, shown
    )
    assert turn.criteria.price_min == pytest.approx(79.01)
    assert turn.criteria.price_max is None


def test_colour_refinement_keeps_everything_else() -> None:
    start = Criteria(category="Shoes > Running Shoes", price_max=60.99, exclude_colours=("blue",))
    text = "any in blue?"
    turn = apply_turn(start, "refine", text, [ent(text, "colour", "blue")], VOCAB)
    assert turn.criteria.colour == "blue"
    assert turn.criteria.exclude_colours == ()
    assert turn.criteria.price_max == 60.99 and turn.criteria.category == start.category


def test_dislike_brand_excludes_it() -> None:
    start = Criteria(category="Shoes > Running Shoes", brands=("Nike",), colour="blue")
    text = "I don't like Nike"
    turn = apply_turn(start, "react_negative", text, [ent(text, "brand", "Nike")], VOCAB)
    assert turn.criteria.exclude_brands == ("Nike",)
    assert turn.criteria.brands == ()
    assert turn.criteria.colour == "blue"


def test_not_red_in_a_refinement_excludes_red() -> None:
    text = "not red please"
    turn = apply_turn(
        Criteria(category="Clothing > Jackets"), "refine", text, [ent(text, "colour", "red")], VOCAB
    )
    assert turn.criteria.exclude_colours == ("red",)
    assert turn.criteria.colour is None


def test_new_product_type_starts_a_fresh_search() -> None:
    start = Criteria(
        category="Shoes > Running Shoes", colour="blue", price_max=60, exclude_brands=("Nike",)
    )
    text = "show me headphones"
    turn = apply_turn(
        start, "ask_recommendation", text, [ent(text, "product_type", "headphones")], VOCAB
    )
    c = turn.criteria
    assert c.category == "Audio > Headphones"
    assert c.colour is None and c.price_max is None and c.exclude_brands == ()
    assert turn.reset_seen


def test_same_type_request_adds_to_criteria() -> None:
    start = Criteria(product_type="running shoes", category="Shoes > Running Shoes", price_max=80)
    text = "running shoes from Brooks"
    turn = apply_turn(
        start,
        "ask_recommendation",
        text,
        [ent(text, "product_type", "running shoes"), ent(text, "brand", "Brooks")],
        VOCAB,
    )
    assert turn.criteria.brands == ("Brooks",) and turn.criteria.price_max == 80
    assert not turn.reset_seen


def test_vague_negative_reaction_hides_what_was_shown() -> None:
    start = Criteria(category="Clothing > Jackets")
    shown = [ShownProduct(5, 10.0), ShownProduct(6, 12.0)]
    turn = apply_turn(start, "react_negative", "meh, not my style", [], VOCAB, shown)
    assert turn.mode == "exclude_shown"
    assert set(turn.exclude_ids) == {5, 6}
    assert turn.criteria == start


def test_more_like_this_targets_the_product() -> None:
    start = Criteria(category="Clothing > Jackets")
    shown = [ShownProduct(5, 10.0), ShownProduct(6, 12.0)]
    turn = apply_turn(
        start,
        "refine",
        "more like the second one",
        [Entity("refinement", "similar")],
        VOCAB,
        shown,
        similar_target=6,
    )
    assert turn.mode == "similar" and turn.criteria.similar_to == 6


def test_affirm_means_show_more() -> None:
    start = Criteria(category="Clothing > Jackets")
    assert apply_turn(start, "affirm", "yes", [], VOCAB).mode == "more"


def test_unknown_brand_is_reported_not_applied() -> None:
    text = "anything from Zorgbrand"
    turn = apply_turn(
        Criteria(category="Clothing > Jackets"),
        "refine",
        text,
        [ent(text, "brand", "Zorgbrand")],
        VOCAB,
    )
    assert turn.criteria.brands == ()
    assert turn.unknown == ("brand 'Zorgbrand'",)


def test_slots_round_trip() -> None:
    c = Criteria(
        product_type="running shoes",
        category="Shoes > Running Shoes",
        brands=("Brooks",),
        exclude_brands=("Nike", "Adidas"),
        colour="blue",
        exclude_colours=("red",),
        material="mesh",
        size="10",
        price_min=20.0,
        price_max=80.0,
        query="I need running shoes",
        similar_to=12,
    )
    assert Criteria.from_slots(c.to_slots()) == c
    assert Criteria.from_slots({}) == Criteria()
    assert Criteria.from_slots({"price_max": "abc", "similar_to": "x"}) == Criteria()


def test_shown_slot_tolerates_garbage() -> None:
    shown = shown_from_slot([{"id": 3, "price": 9.5}, {"nope": 1}, "7", None])
    assert [s.id for s in shown] == [3, 7]


@dataclass
class FakeProduct:
    """Just the attributes Filter.matches reads."""

    id: int
    category: str
    brand: str | None
    colour: str | None
    material: str | None
    price: float
    stock: int
    sizes: list[str] = field(default_factory=list)


def test_random_turn_sequences_never_contradict_themselves() -> None:
    """Property over seeded random turn sequences: the filter is the conjunction said so far."""
    rng = random.Random(7)
    products = [
        FakeProduct(
            id=i,
            category=rng.choice(VOCAB.categories),
            brand=rng.choice(VOCAB.brands),
            colour=rng.choice(VOCAB.colours),
            material=rng.choice(VOCAB.materials),
            price=round(rng.uniform(5, 200), 2),
            stock=rng.choice([0, 3, 10]),
        )
        for i in range(400)
    ]
    for _ in range(60):
        crit = Criteria()
        banned_brands: set[str] = set()
        for _step in range(6):
            kind = rng.choice(["brand_no", "colour", "cheaper", "type"])
            if kind == "brand_no":
                b = rng.choice(VOCAB.brands)
                t = f"I don't like {b}"
                crit = apply_turn(crit, "react_negative", t, [ent(t, "brand", b)], VOCAB).criteria
                banned_brands.add(b)
            elif kind == "colour":
                col = rng.choice(VOCAB.colours)
                t = f"any in {col}?"
                crit = apply_turn(crit, "refine", t, [ent(t, "colour", col)], VOCAB).criteria
            elif kind == "cheaper":
                shown = [ShownProduct(p.id, p.price) for p in rng.sample(products, 3)]
                cap = min(s.price for s in shown)
                crit = apply_turn(
                    crit, "refine", "cheaper", [Entity("refinement", "cheaper")], VOCAB, shown
                ).criteria
                assert crit.price_max is not None and crit.price_max < cap
            else:
                cat = rng.choice(VOCAB.categories)
                leaf = cat.split(" > ")[-1].lower()
                t = f"show me {leaf}"
                crit = apply_turn(
                    crit, "ask_recommendation", t, [ent(t, "product_type", leaf)], VOCAB
                ).criteria
                banned_brands = set(crit.exclude_brands)
            flt = crit.to_filter()
            for p in products:
                if flt.matches(p):
                    assert p.brand not in banned_brands
                    assert crit.price_max is None or p.price <= crit.price_max
                    assert crit.colour is None or p.colour == crit.colour
                    assert p.stock > 0


def test_a_colour_word_tagged_as_brand_too_stays_a_colour() -> None:
    text = "any in blue?"
    vocab = Vocabulary(brands=["Blue", "Nike"], colours=["blue"], categories=["Clothing > Jackets"])
    both = [ent(text, "brand", "blue"), ent(text, "colour", "blue")]
    turn = apply_turn(Criteria(category="Clothing > Jackets"), "refine", text, both, vocab)
    assert turn.criteria.colour == "blue" and turn.criteria.brands == ()


def test_brand_lookup_never_lists_a_colour_word() -> None:
    import yaml

    from tailor.nlu.lookups import render_lookups

    vocab = Vocabulary(brands=["Blue", "Nike"], colours=["blue"], categories=["Clothing > Jackets"])
    tables = {
        t["lookup"]: t["examples"]
        for t in yaml.safe_load(render_lookups(vocab))["nlu"]
        if "lookup" in t
    }
    assert "Nike" in tables["brand"] and "Blue" not in tables["brand"]


def test_shown_slot_entries_that_are_not_products_are_dropped() -> None:
    from tailor.recommend.criteria import shown_from_slot

    shown = shown_from_slot(
        [
            {"id": 5, "price": 10.0, "brand": "Acme", "colour": "red"},
            {"id": float("inf")},
            float("inf"),
            {"id": 6, "price": float("nan"), "brand": ["x"], "colour": 3},
            True,
            "7",
        ]
    )
    assert [(s.id, s.price, s.brand, s.colour) for s in shown] == [
        (5, 10.0, "Acme", "red"),
        (6, 0.0, None, None),
        (7, 0.0, None, None),
    ]


@pytest.mark.parametrize(
    ("criteria", "phrase"),
    [
        (Criteria(brands=("Lego",)), "products from Lego"),
        (Criteria(price_max=50.0), "products under $50"),
        (Criteria(colour="blue", exclude_brands=("Nike",)), "products in blue not Nike"),
        (Criteria(product_type="running shoes", price_max=80.0), "running shoes under $80"),
        (Criteria(query="gift for a gardener"), "gift for a gardener"),
        (Criteria(), "anything"),
    ],
)
def test_describe_always_names_what_is_shown(criteria: Criteria, phrase: str) -> None:
    """ "Here are 4 picks for from Lego" read wrongly: a phrase without a product type
    names products."""
    assert criteria.describe() == phrase
