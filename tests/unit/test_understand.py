"""Query understanding: spelling against the catalog, constraints as entities, the semantic
remainder; and the scope decisions built on it."""

from __future__ import annotations

import itertools
import random

import pytest

from tailor.nlu.price import parse_price, price_spans
from tailor.nlu.understand import FILLER, QueryUnderstanding, osa_distance
from tailor.nlu.vocab import Vocabulary
from tailor.recommend.criteria import Criteria, Entity, apply_turn, merge_entities
from tailor.recommend.scope import is_bare_product_phrase, is_grounded

VOCAB = Vocabulary(
    brands=["Salomon", "Nike", "Adidas", "The North Face", "Logitech"],
    colours=["red", "black", "pink", "blue"],
    materials=["leather", "cotton"],
    categories=[
        "Shoes > Hiking Boots",
        "Shoes > Running Shoes",
        "Electronics > Computer Mice",
        "Sports > Yoga Mats",
        "Electronics > Phone Cases",
        "Clothing > Hoodies",
    ],
)
WORDS = {
    "waterproof": 30,
    "hiking": 50,
    "boots": 40,
    "running": 60,
    "shoes": 80,
    "thick": 5,
    "glitter": 3,
    "gaming": 20,
    "mouse": 10,
    "wireless": 40,
    "headphones": 20,
    "trail": 12,
    "trial": 1,
}
KNOWN = {"how", "long", "cook", "chicken", "oven", "restaurant", "nearby", "good", "balance"}


@pytest.fixture(scope="module")
def qu() -> QueryUnderstanding:
    return QueryUnderstanding(VOCAB, WORDS, KNOWN)


def test_osa_distance_by_hand_and_against_rapidfuzz() -> None:
    from rapidfuzz.distance import OSA

    assert osa_distance("hikng", "hiking") == 1
    assert osa_distance("haedphones", "headphones") == 1  # a swap is one edit
    assert osa_distance("adiddas", "adidas") == 1
    assert osa_distance("", "abc") == 3
    assert osa_distance("kitten", "sitting") == 3
    rng = random.Random(5)
    for _ in range(300):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 6)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 6)))
        assert osa_distance(a, b) == OSA.distance(a, b), (a, b)


def test_spelling_is_fixed_only_for_unknown_words(qu: QueryUnderstanding) -> None:
    assert qu.correct_word("hikng") == "hiking"
    assert qu.correct_word("runing") == "running"
    assert qu.correct_word("headphnes") == "headphones"  # 2 edits allowed from 7 letters
    assert qu.correct_word("adiddas") == "adidas"  # brand words are catalog words too
    assert qu.correct_word("blak") == "black"
    # known English words, filler, short words and numbers stay as they are
    for word in ("chicken", "oven", "please", "red", "mat", "120", "x2"):
        assert qu.correct_word(word) is None, word
    # nothing within reach
    assert qu.correct_word("zzzzzz") is None


def test_spelling_prefers_the_closest_then_the_most_frequent(qu: QueryUnderstanding) -> None:
    # "trali" is one swap from "trail" (12) and two edits from "trial" (1)
    assert qu.correct_word("trali") == "trail"
    # brute force over the catalog words: the answer has the minimal distance, then count
    for word in ("shoez", "bootz", "runnning", "waterprof", "glittr"):
        got = qu.correct_word(word)
        limit = 1 if len(word) <= 6 else 2
        cands = [(osa_distance(word, w), -n, w) for w, n in qu.catalog_words.items()]
        best = min((c for c in cands if c[0] <= limit and len(c[2]) >= 3), default=None)
        assert got == (best[2] if best else None), word


def test_the_issue_example(qu: QueryUnderstanding) -> None:
    u = qu.understand("waterproof hiking boots under 120, not Salomon")
    assert u.semantic == "waterproof hiking boots"
    assert u.first("product_type").value == "hiking boots"  # type: ignore[union-attr]
    assert u.price is not None and u.price.max == 120 and u.price.min is None
    salomon = u.first("brand")
    assert salomon is not None and salomon.value == "Salomon" and salomon.negated


def test_typos_plurals_and_offsets_on_the_original_text(qu: QueryUnderstanding) -> None:
    text = "I'm looking for runing shoes from adiddas in blak, size 10 please"
    u = qu.understand(text)
    assert dict(u.corrections) == {"runing": "running", "adiddas": "adidas", "blak": "black"}
    by_kind = {s.entity: s for s in u.spans}
    assert by_kind["product_type"].value == "running shoes"
    assert by_kind["brand"].value == "Adidas" and not by_kind["brand"].negated
    assert by_kind["colour"].value == "black"
    assert by_kind["size"].value == "10"
    for span in u.spans:  # offsets point into the original, typo included
        assert text[span.start : span.end] == span.text
    assert by_kind["brand"].text == "adiddas"
    # the wanted brand and the size are filters, not words to embed
    assert u.semantic == "running shoes in black"


def test_exclusions_and_prices_leave_the_semantic_query(qu: QueryUnderstanding) -> None:
    u = qu.understand("anything but nike, between 30 and 50 dollars")
    assert u.values("brand", negated=True) == ["Nike"]
    assert u.price is not None and (u.price.min, u.price.max) == (30, 50)
    assert u.semantic == ""
    u = qu.understand("I don't like red hoodies")
    assert u.values("colour", negated=True) == ["red"]
    assert u.semantic == "hoodies"


def test_price_spans_cover_the_cue_words() -> None:
    text = "waterproof boots under 120 please"
    assert [text[s:e] for s, e in price_spans(text)] == ["under 120"]
    text = "between $30 and $50, or 80 or less"
    rng = parse_price(text)
    assert rng is not None
    assert [text[s:e] for s, e in price_spans(text)] == ["between $30 and $50", "80 or less"]
    assert price_spans("size 10 shoes") == []


def test_coverage_and_scope_decisions(qu: QueryUnderstanding) -> None:
    bare = qu.understand("gaming mouse wireless")
    assert bare.coverage == 1.0 and is_bare_product_phrase(bare)
    assert is_bare_product_phrase(qu.understand("logitech"))  # a brand alone
    assert is_bare_product_phrase(qu.understand("yoga mat thick"))
    for question in ("how long to cook chicken in the oven", "what's my balance"):
        u = qu.understand(question)
        assert not is_bare_product_phrase(u), question
        assert not is_grounded(u), question
    restaurant = qu.understand("can you recommend a good restaurant nearby")
    assert restaurant.content_words == ("restaurant", "nearby")
    assert not is_grounded(restaurant)
    assert is_grounded(qu.understand("something in red under 50"))
    # an exclusion alone does not ground a request
    assert not is_grounded(qu.understand("nothing from nike"))
    assert all(w not in FILLER for w in bare.content_words)


def test_understanding_feeds_the_criteria(qu: QueryUnderstanding) -> None:
    text = "waterproof hikng boots under 120, not Salomon"
    u = qu.understand(text)
    rasa = [Entity("price", "under 120", 24, 33)]  # what the regex extractor found
    found = [Entity.from_rasa(s.as_rasa()) for s in u.spans if s.entity != "price"]
    entities = merge_entities(rasa, found)
    assert [e.entity for e in entities] == ["price", "product_type", "brand"]
    turn = apply_turn(Criteria(), "ask_recommendation", text, entities, VOCAB, semantic=u.semantic)
    crit = turn.criteria
    assert crit.query == "waterproof hiking boots"
    assert crit.category == "Shoes > Hiking Boots"
    assert crit.exclude_brands == ("Salomon",)
    assert crit.price_max == 120


def test_merge_keeps_rasa_first_and_skips_overlaps() -> None:
    rasa = [Entity("brand", "Nike", 0, 4)]
    extra = [Entity("brand", "nike", 0, 4), Entity("colour", "red", 5, 8)]
    assert merge_entities(rasa, extra) == [rasa[0], extra[1]]
    assert merge_entities([], extra) == extra


@pytest.mark.parametrize("n", [0, 1, 2])
def test_understand_never_fails_on_odd_input(qu: QueryUnderstanding, n: int) -> None:
    rng = random.Random(n)
    alphabet = "abc XYZ 0123456789 $€,.!?'’-ß\u0130"
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        u = qu.understand(text)
        for span in u.spans:
            assert 0 <= span.start <= span.end <= len(text)
    assert list(itertools.islice(qu.understand("").spans, 1)) == []


def test_inflections_of_known_words_are_not_typos() -> None:
    qu = QueryUnderstanding(VOCAB, {"pens": 5, "commuter": 3, "women": 4}, {"men"})
    assert qu.correct_word("mens") is None  # "men" + s, not "pens"
    assert qu.correct_word("womens") is None
    assert qu.correct_word("commute") is None  # the stem of "commuter"
    assert qu.correct_word("pen") is None  # too short anyway
    assert qu.correct_word("pnes") == "pens"  # a real typo is still fixed


def test_a_product_word_used_as_a_verb_is_not_a_product() -> None:
    vocab = Vocabulary(categories=["Watches > Watches", "Home > Irons"])
    qu = QueryUnderstanding(vocab, {"watch": 3, "iron": 2}, {"movie", "tonight", "shirt"})
    assert not qu.understand("suggest a movie to watch tonight").names_product
    assert not qu.understand("how to iron a shirt").names_product
    assert qu.understand("a watch for tonight").names_product


def test_a_brand_in_the_plural_is_the_brand(qu: QueryUnderstanding) -> None:
    u = qu.understand("nikes for running")
    assert u.values("brand") == ["Nike"]
    assert qu.understand("no nikes please").values("brand", negated=True) == ["Nike"]


BRANDED = Vocabulary(
    brands=["Nespresso", "OtterBox", "Samsung", "Lego", "DeWalt", "Breville"],
    categories=[
        "Kitchen > Coffee Machines",
        "Kitchen > Bread Machines",
        "Phones > Phone Cases",
        "Furniture > Bookcases",
        "Electronics > TVs",
        "Toys > Building Sets",
        "Bedding > Duvet Cover Sets",
        "Tools > Power Tools",
        "Tools > Garden Tools",
    ],
    brand_categories=[
        ("Nespresso", "Kitchen > Coffee Machines"),
        ("OtterBox", "Phones > Phone Cases"),
        ("Samsung", "Phones > Phone Cases"),
        ("Samsung", "Electronics > TVs"),
        ("Lego", "Toys > Building Sets"),
        ("DeWalt", "Tools > Power Tools"),
        ("DeWalt", "Tools > Garden Tools"),
        ("Breville", "Kitchen > Coffee Machines"),
        ("Breville", "Kitchen > Bread Machines"),
    ],
)


def _types(qu: QueryUnderstanding, text: str) -> list[tuple[str, str, str]]:
    return [(s.entity, s.value, s.text) for s in qu.understand(text).spans]


def test_a_brand_says_which_kind_a_generic_word_means() -> None:
    qu = QueryUnderstanding(BRANDED, {"machine": 3, "case": 4, "set": 2}, KNOWN)
    assert _types(qu, "a nespresso machine") == [
        ("brand", "Nespresso", "nespresso"),
        ("product_type", "coffee machines", "machine"),
    ]
    # misspelled brand, a word between them, the head before the brand
    assert ("product_type", "coffee machines", "machine") in _types(qu, "nespreso machine")
    assert ("product_type", "phone cases", "case") in _types(qu, "a samsung rugged case")
    assert ("product_type", "phone case", "phone case") in _types(qu, "a samsung phone case")
    assert ("product_type", "phone cases", "case") in _types(qu, "case by samsung")
    assert BRANDED.category_for("coffee machines") == "Kitchen > Coffee Machines"
    # a generic word the brand makes two kinds of product by: no guess
    assert [s.entity for s in qu.understand("a breville machine").spans] == ["brand"]
    # no brand, a negated brand, or a product type already named: nothing added
    assert not [s for s in qu.understand("a machine").spans if s.entity == "product_type"]
    assert [s.entity for s in qu.understand("not nespresso machine").spans] == ["brand"]
    assert _types(qu, "samsung tvs case")[1:] == [("product_type", "tvs", "tvs")]


def test_brand_category_against_a_brute_force_scan() -> None:
    for brand, word in itertools.product(
        [*BRANDED.brands, "otterbox", "Unknown"], ["machine", "machines", "case", "set", "tool"]
    ):
        canonical = BRANDED.brand(brand)
        ending = [
            path
            for b, path in BRANDED.brand_categories
            if b == canonical and path.rsplit(" ", 1)[-1].lower().rstrip("s") == word.rstrip("s")
        ]
        expected = ending[0] if len(ending) == 1 else None
        assert BRANDED.brand_category(brand, word) == expected, (brand, word)


def test_a_brand_written_as_two_words() -> None:
    qu = QueryUnderstanding(BRANDED, {"case": 4, "drill": 2}, KNOWN)
    assert _types(qu, "otter box case") == [
        ("brand", "OtterBox", "otter box"),
        ("product_type", "phone cases", "case"),
    ]
    assert _types(qu, "a de walt drill")[0] == ("brand", "DeWalt", "de walt")
    # words that are brands alone are not merged ("lego samsung" is two brands)
    assert [s.value for s in qu.understand("lego samsung").spans] == ["Lego", "Samsung"]
