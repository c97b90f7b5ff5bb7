"""Catalog vocabulary (canonicalisation, product types) and the generated lookup tables."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import yaml

from tailor.nlu.lookups import render_lookups, write_lookups
from tailor.nlu.refine import lookup_phrases
from tailor.nlu.vocab import Vocabulary, singular

BRANDS = ["Nike", "Adidas", "Brooks", "Levi's", "The North Face", "New Balance", "Dr. Martens"]
COLOURS = ["blue", "red", "black", "grey", "navy", "off-white"]
MATERIALS = ["leather", "mesh", "cotton", "aluminium", "gore-tex"]
CATEGORIES = [
    "Shoes > Running Shoes",
    "Shoes > Hiking Boots",
    "Shoes > Sneakers",
    "Clothing > Jackets",
    "Clothing > T-Shirts",
    "Clothing > Jeans",
    "Audio > Headphones",
    "Electronics > Laptops",
    "Home > Sofas",
]


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary(brands=BRANDS, colours=COLOURS, materials=MATERIALS, categories=CATEGORIES)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("nike", "Nike"),
        ("NIKE", "Nike"),
        ("levis", "Levi's"),
        ("Levi’s", "Levi's"),
        ("north face", "The North Face"),
        ("the north face", "The North Face"),
        ("newbalance", "New Balance"),
        ("dr martens", "Dr. Martens"),
        ("Puma", None),
        ("", None),
    ],
)
def test_brand(vocab: Vocabulary, value: str, expected: str | None) -> None:
    assert vocab.brand(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Blue", "blue"),
        ("gray", "grey"),
        ("navy blue", "navy"),
        ("navy", "navy"),
        ("dark blue", "navy"),
        ("reds", "red"),
        ("blueish", "blue"),
        ("off white", "off-white"),
        ("purple", None),
    ],
)
def test_colour(vocab: Vocabulary, value: str, expected: str | None) -> None:
    assert vocab.colour(value) == expected


def test_colour_alias_follows_the_catalog_spelling() -> None:
    v = Vocabulary(colours=["gray"])
    assert v.colour("grey") == "gray" and v.colour("gray") == "gray"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Leather", "leather"), ("aluminum", "aluminium"), ("goretex", "gore-tex"), ("wool", None)],
)
def test_material(vocab: Vocabulary, value: str, expected: str | None) -> None:
    assert vocab.material(value) == expected


@pytest.mark.parametrize(
    ("product_type", "expected"),
    [
        ("running shoes", "Shoes > Running Shoes"),
        ("Running Shoe", "Shoes > Running Shoes"),
        ("runners", "Shoes > Running Shoes"),
        ("trail running shoes", "Shoes > Running Shoes"),
        ("a pair of running shoes", "Shoes > Running Shoes"),
        ("shoes", "Shoes"),
        ("shoe", "Shoes"),
        ("sneakers", "Shoes > Sneakers"),
        ("trainers", "Shoes > Sneakers"),
        ("boots", "Shoes > Hiking Boots"),
        ("tee", "Clothing > T-Shirts"),
        ("t-shirt", "Clothing > T-Shirts"),
        ("tshirts", "Clothing > T-Shirts"),
        ("jeans", "Clothing > Jeans"),
        ("laptop", "Electronics > Laptops"),
        ("earbuds", "Audio > Headphones"),
        ("headphones", "Audio > Headphones"),
        ("couch", "Home > Sofas"),
        ("sofa", "Home > Sofas"),
        ("clothing", "Clothing"),
        ("tv", None),  # alias exists, but the catalog has no TVs
        ("banana", None),
        ("", None),
    ],
)
def test_category_for(vocab: Vocabulary, product_type: str, expected: str | None) -> None:
    assert vocab.category_for(product_type) == expected


def test_product_type_phrases_only_name_existing_categories(vocab: Vocabulary) -> None:
    phrases = vocab.product_type_phrases()
    assert phrases == sorted(phrases)
    assert {"running shoes", "running shoe", "t-shirts", "t-shirt", "sneakers", "couch"} <= set(
        phrases
    )
    assert "tv" not in phrases and "jean" not in phrases
    assert all(vocab.category_for(p) is not None for p in phrases)


@pytest.mark.parametrize(
    ("word", "expected"),
    [("shoes", "shoe"), ("dresses", "dress"), ("accessories", "accessories"), ("jeans", "jeans")],
)
def test_singular(word: str, expected: str) -> None:
    assert singular(word) == expected


def test_from_session_reads_distinct_values(tmp_path: Path) -> None:
    from tailor.store import Product, make_session_factory, session_scope

    factory = make_session_factory(f"sqlite:///{tmp_path / 'cat.db'}")
    with session_scope(factory) as s:
        for i, (cat, brand, colour, material) in enumerate(
            [
                ("Shoes > Running Shoes", "Nike", "blue", "mesh"),
                ("Shoes > Running Shoes", "Nike", "red", "mesh"),
                ("Clothing > Jackets", "Patagonia", None, None),
            ]
        ):
            s.add(
                Product(
                    sku=f"S{i}",
                    title="t",
                    category=cat,
                    brand=brand,
                    price=10.0,
                    colour=colour,
                    material=material,
                )
            )
    with factory() as s:
        v = Vocabulary.from_session(s)
    assert v.brands == ("Nike", "Patagonia")
    assert v.colours == ("blue", "red")
    assert v.materials == ("mesh",)
    assert v.categories == ("Clothing > Jackets", "Shoes > Running Shoes")


# --- lookup tables ------------------------------------------------------------------------


def _load(path: Path) -> dict[str, object]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _items(block: str) -> list[str]:
    return [line[1:].strip() for line in block.splitlines()]


def _tables(data: dict[str, object]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    lookups: dict[str, list[str]] = {}
    synonyms: dict[str, list[str]] = {}
    for item in data["nlu"]:  # type: ignore[attr-defined]
        if "lookup" in item:
            lookups[item["lookup"]] = _items(item["examples"])
        elif "synonym" in item:
            synonyms[item["synonym"]] = _items(item["examples"])
    return lookups, synonyms


def test_lookups_yaml_has_the_expected_tables(vocab: Vocabulary, tmp_path: Path) -> None:
    path = write_lookups(vocab, tmp_path / "generated" / "lookups.yml")
    data = _load(path)
    assert data["version"] == "3.1"
    lookups, synonyms = _tables(data)
    assert set(lookups) == {"brand", "colour", "material", "product_type", "refinement"}
    assert {"Nike", "Levi's", "Levis", "The North Face", "North Face"} <= set(lookups["brand"])
    assert {"blue", "grey", "gray", "navy blue"} <= set(lookups["colour"])
    assert {"leather", "aluminum"} <= set(lookups["material"])
    assert {"running shoes", "t-shirt", "laptop"} <= set(lookups["product_type"])
    assert {"cheaper", "less expensive", "more like", "other brands"} <= set(lookups["refinement"])
    # synonyms map phrases to canonical values
    assert "less expensive" in synonyms["cheaper"]
    assert "more like" in synonyms["similar"]
    assert "gray" in synonyms["grey"] and "navy blue" in synonyms["navy"]
    assert "levis" in synonyms["Levi's"]
    # no phrase maps to two values
    flat = [p.lower() for phrases in synonyms.values() for p in phrases]
    assert len(flat) == len(set(flat))
    # the refinement table is exactly the safe phrases
    expected = {p for ps in lookup_phrases().values() for p in ps}
    assert set(lookups["refinement"]) == expected


def test_lookups_are_deterministic(tmp_path: Path) -> None:
    shuffled = random.Random(3)
    texts = []
    for _ in range(3):
        lists = [list(x) for x in (BRANDS, COLOURS, MATERIALS, CATEGORIES)]
        for lst in lists:
            shuffled.shuffle(lst)
        texts.append(render_lookups(Vocabulary(*lists)))
    assert texts[0] == texts[1] == texts[2]
    path = tmp_path / "lookups.yml"
    write_lookups(Vocabulary(BRANDS, COLOURS, MATERIALS, CATEGORIES), path)
    first = path.read_bytes()
    write_lookups(Vocabulary(BRANDS, COLOURS, MATERIALS, CATEGORIES), path)
    assert path.read_bytes() == first == texts[0].encode()


def test_lookups_change_with_the_vocabulary() -> None:
    a = render_lookups(Vocabulary(BRANDS, COLOURS, MATERIALS, CATEGORIES))
    b = render_lookups(Vocabulary([*BRANDS, "Hoka"], COLOURS, MATERIALS, CATEGORIES))
    assert a != b and "- Hoka\n" in b


def _rasa_pattern(elements: list[str]) -> re.Pattern[str]:
    """What Rasa 3.6 builds from a lookup table (rasa/nlu/utils/pattern_utils.py)."""
    body = "\\b|\\b".join(re.escape(e) for e in elements)
    return re.compile(f"(\\b{body}\\b)", re.IGNORECASE)


def test_entries_work_as_rasa_patterns(tmp_path: Path) -> None:
    odd = Vocabulary(
        brands=[*BRANDS, "C&A", "Abercrombie & Fitch", "(RED)", "On", "Co."],
        colours=COLOURS,
        materials=MATERIALS,
        categories=CATEGORIES,
    )
    lookups, _ = _tables(_load(write_lookups(odd, tmp_path / "l.yml")))
    brand = _rasa_pattern(lookups["brand"])
    found = [m.group(0) for m in brand.finditer("Dr. Martens or C&A or RED, not on sale, Co")]
    assert found == ["Dr. Martens", "C&A", "RED", "Co"]
    assert "On" not in lookups["brand"]  # a stop word would match everywhere
    product = _rasa_pattern(lookups["product_type"])
    # longest first: the whole phrase wins over its parts
    assert [m.group(0) for m in product.finditer("I need running shoes")] == ["running shoes"]
    refinement = _rasa_pattern(lookups["refinement"])
    assert [m.group(0) for m in refinement.finditer("show me more expensive ones")] == [
        "more expensive"
    ]


def test_a_generic_last_word_is_not_an_alias_of_its_category() -> None:
    """The word "set" alone named "Toys > Building Sets": "a duvet cover set" went to toys."""
    v = Vocabulary(
        categories=[
            "Toys > Building Sets",
            "Phones > Phone Cases",
            "Home > Bedding",
            "Shoes > Hiking Boots",
        ]
    )
    assert v.category_for("set") is None and v.category_for("sets") is None
    assert v.category_for("cases") is None
    assert {"set", "sets", "case", "cases"}.isdisjoint(v.product_type_phrases())
    # the full names, and a specific last word, still resolve
    assert v.category_for("building sets") == "Toys > Building Sets"
    assert v.category_for("glitter phone case") == "Phones > Phone Cases"
    assert v.category_for("boots") == "Shoes > Hiking Boots"
    # what shoppers call bedding
    for phrase in ("a duvet cover set", "duvet covers", "duvet", "bed sheets"):
        assert v.category_for(phrase) == "Home > Bedding", phrase
