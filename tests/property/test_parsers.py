"""Property-based tests of the pure parsers on the message path and the catalog importers.

Whatever a shopper types (control characters, lone surrogates, emoji, right-to-left and CJK
scripts, 100,000 characters, markup) the parsers return a value that keeps their invariants;
mistyped slot values never break reading the criteria back; a catalog file with broken rows
is imported with every bad row reported by line and reason.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tailor.nlu.negation import is_negated
from tailor.nlu.ordinals import parse_ordinals
from tailor.nlu.price import parse_price, price_spans
from tailor.nlu.reactions import parse_reaction
from tailor.nlu.refine import detect_refinement
from tailor.nlu.understand import QueryUnderstanding
from tailor.nlu.vocab import Vocabulary
from tailor.privacy.redaction import CARD, EMAIL, PHONE, luhn_valid, redact
from tailor.profiles.psychographics import extract_preferences
from tailor.recommend.criteria import (
    CRITERIA_SLOTS,
    Criteria,
    Entity,
    apply_turn,
    shown_from_slot,
)
from tailor.store import Product, make_session_factory
from tailor.store.importers import import_csv, import_dummyjson

VOCAB = Vocabulary(
    brands=["Nike", "Adidas", "Levi's", "The North Face"],
    colours=["blue", "red", "black"],
    materials=["leather", "cotton"],
    categories=["Shoes > Running Shoes", "Clothing > Jackets", "Audio > Headphones"],
)
QU = QueryUnderstanding(VOCAB, {"running": 5, "shoes": 8, "waterproof": 3}, {"please"})

# Words the parsers look for, so generated text hits their branches, not only noise.
CUES = [
    "under",
    "over",
    "between",
    "and",
    "to",
    "around",
    "$",
    "€",
    "£",
    "k",
    "bucks",
    "first",
    "last",
    "top",
    "second",
    "third",
    "#",
    "number",
    "both",
    "all",
    "of them",
    "the former",
    "not",
    "don't",
    "no",
    "cheaper",
    "pricier",
    "colour",
    "brand",
    "price",
    "I love",
    "we",
    "hiking",
    "sustainable",
    "size",
    "st",
    "nd",
    "vs",
    "compare",
    "option",
    "-",
    ",",
    ".",
    "0",
    "1",
    "2",
    "3",
    "12",
    "99",
    "100",
    "1.5",
    "1,200",
    "10000000000000000000000",
    "İ",
    "ß",
    "ﬁ",
    "🙂",
    "👩‍👩‍👧",
    "مرحبا",
    "שלום",
    "你好",
    "日本語",
    "\u202e",
    "\u200b",
    "\x00",
    "\x1b[31m",
    "\r\n",
    "\t",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "{{7*7}}",
    "${x}",
]
words = st.sampled_from(CUES) | st.text(max_size=8)
# Any str, lone surrogates included (a JSON body can carry "\ud800").
any_text = st.text(alphabet=st.characters(codec=None), max_size=200)
cue_text = st.lists(words, max_size=25).map(" ".join)
message = any_text | cue_text
LONG = ("under $80 " * 10_001)[:100_000]


# --- ordinals -----------------------------------------------------------------------------


@given(message, st.integers(min_value=0, max_value=12))
@example("the first two and last 99 and #999", 3)
@example("last 0", 0)
@example(LONG, 5)
def test_ordinals_are_always_in_range(text: str, n: int) -> None:
    result = parse_ordinals(text, n)
    assert all(0 <= i < n for i in result.indexes)
    assert len(set(result.indexes)) == len(result.indexes)
    assert all((p >= 1 and p > n) or p < 1 for p in result.invalid) or all(
        not 1 <= p <= n for p in result.invalid
    )
    assert result.positions == tuple(i + 1 for i in result.indexes)


# --- reactions, refinements, negation -----------------------------------------------------


@given(message)
@example(LONG)
def test_reaction_is_always_one_of_the_aspects(text: str) -> None:
    assert parse_reaction(text).aspect in ("colour", "price", "brand", "product")
    assert detect_refinement(text) is None or isinstance(detect_refinement(text), str)


@given(message, st.data())
def test_negation_takes_any_span(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(min_value=0, max_value=len(text)))
    end = data.draw(st.integers(min_value=start, max_value=len(text)))
    assert isinstance(is_negated(text, start, end), bool)


# --- price --------------------------------------------------------------------------------


@given(message)
@example(LONG)
@example("between 1e308 and 1e309 dollars")
@example("under $" + "9" * 400)
@example("around " + "9" * 5000 + " bucks")
@example("İİİ under $80")
def test_price_is_an_ordered_finite_band_with_spans_inside_the_text(text: str) -> None:
    rng = parse_price(text)
    spans = price_spans(text)
    if rng is None:
        assert spans == []
        return
    bounds = [b for b in (rng.min, rng.max) if b is not None]
    assert bounds
    assert all(math.isfinite(b) and b >= 0 for b in bounds)
    if rng.min is not None and rng.max is not None:
        assert rng.min <= rng.max
    assert all(0 <= s < e <= len(text) for s, e in spans)


@given(st.integers(min_value=1, max_value=99_999))
def test_marked_amounts_are_read_back_exactly(amount: int) -> None:
    rng = parse_price(f"something under ${amount}")
    assert rng is not None and rng.max == amount and rng.min is None


# --- psychographics ----------------------------------------------------------------------


@given(message)
@example(LONG)
@example("I love hiking but I don't care about brands. " * 2000)
def test_preferences_quote_the_text_they_come_from(text: str) -> None:
    prefs = extract_preferences(text)
    assert len({(p.kind, p.value) for p in prefs}) == len(prefs)
    for p in prefs:
        assert p.evidence and p.evidence in text


# --- query understanding ------------------------------------------------------------------


@given(message)
@example(LONG[:5_000])
def test_understanding_spans_index_the_text(text: str) -> None:
    und = QU.understand(text)
    for span in und.spans:
        assert 0 <= span.start <= span.end <= len(text)
    assert 0.0 <= und.coverage <= 1.0


# --- redaction ----------------------------------------------------------------------------


def _luhn_complete(prefix: str) -> str:
    return next(prefix + d for d in "0123456789" if luhn_valid(prefix + d))


cards = st.text(alphabet="0123456789", min_size=15, max_size=15).map(_luhn_complete)
card_grouped = cards.flatmap(
    lambda c: st.sampled_from(
        [c, " ".join(c[i : i + 4] for i in range(0, 16, 4)), "-".join(re.findall(".{4}", c))]
    )
)
padding = st.sampled_from(CUES).filter(lambda w: not re.search(r"[\w+-]$|^[\w+-]", w)) | st.just(
    " "
)


@given(message)
@example(LONG)
@example("call +44 20 7946 0958 or mail a.b@example.com, card 4111 1111 1111 1111")
def test_redaction_is_idempotent_and_only_inserts_placeholders(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
    # Whatever was replaced, the text outside the placeholders was not invented.
    stripped = once
    for placeholder in (EMAIL, PHONE, CARD):
        stripped = stripped.replace(placeholder, "")
    assert len(stripped) <= len(text)
    assert len(once) <= len(text) + len(CARD) * once.count(CARD) + len(PHONE) * once.count(
        PHONE
    ) + len(EMAIL) * once.count(EMAIL)


@given(st.lists(padding, max_size=3).map(" ".join), card_grouped, st.lists(padding, max_size=3))
def test_redaction_removes_every_luhn_valid_card(before: str, card: str, after: list[str]) -> None:
    text = f"{before} my card is {card} {' '.join(after)}"
    out = redact(text)
    assert re.sub(r"\D", "", card) not in re.sub(r"[ -]", "", out)
    assert CARD in out


# --- criteria -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["1e400", "nan", "-inf", "", " ", "12", "Nike"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
SLOT_NAMES = list(CRITERIA_SLOTS)
slots = st.dictionaries(st.sampled_from(SLOT_NAMES), json_values)


@given(slots)
@example({"price_min": 10**400, "similar_to": 1e300})
@example({"similar_to": float("inf"), "price_max": float("nan")})
@example({"brand": 5, "exclude_colours": True, "product_type": ["a"], "size": 12})
def test_criteria_from_any_slots_is_well_typed(values: dict[str, Any]) -> None:
    crit = Criteria.from_slots(values)
    for name in ("product_type", "category", "colour", "material", "size", "query"):
        assert getattr(crit, name) is None or isinstance(getattr(crit, name), str), name
    for name in ("brands", "exclude_brands", "exclude_colours"):
        assert all(isinstance(v, str) for v in getattr(crit, name)), name
    for name in ("price_min", "price_max"):
        value = getattr(crit, name)
        assert value is None or (isinstance(value, float) and math.isfinite(value)), name
    assert crit.similar_to is None or isinstance(crit.similar_to, int)
    # Everything downstream of the slots works on what came back.
    crit.describe()
    crit.query_text()
    crit.to_filter()
    assert Criteria.from_slots(crit.to_slots()) == crit


@given(json_values)
def test_shown_slot_of_any_shape(value: Any) -> None:
    for shown in shown_from_slot(value if isinstance(value, list) else [value]):
        assert isinstance(shown.id, int) and math.isfinite(shown.price)


entity = st.builds(
    Entity,
    entity=st.sampled_from(
        ["brand", "colour", "material", "size", "price", "product_type", "refinement", "junk"]
    ),
    value=st.sampled_from(
        [
            "Nike",
            "blue",
            "leather",
            "10",
            "under 80",
            "running shoes",
            "cheaper",
            "other_colour",
            "",
            "🙂",
        ]
    )
    | st.text(max_size=10),
    start=st.none() | st.integers(min_value=-5, max_value=300),
    end=st.none() | st.integers(min_value=-5, max_value=300),
)
intents = st.sampled_from(["ask_recommendation", "refine", "react_negative", "affirm", "greet"])


@given(slots, intents, message, st.lists(entity, max_size=5), st.lists(json_values, max_size=3))
def test_apply_turn_never_raises(
    values: dict[str, Any], intent: str, text: str, ents: list[Entity], shown: list[Any]
) -> None:
    result = apply_turn(
        Criteria.from_slots(values), intent, text, ents, VOCAB, shown_from_slot(shown)
    )
    crit = result.criteria
    assert crit.price_min is None or crit.price_max is None or crit.price_min <= crit.price_max
    crit.describe()


@given(st.dictionaries(st.sampled_from(["entity", "value", "start", "end"]), json_values))
def test_entity_from_any_rasa_dict(raw: dict[str, Any]) -> None:
    ent = Entity.from_rasa(raw)
    apply_turn(Criteria(), "refine", "not blue, under 80", [ent], VOCAB)


# --- importers ---------------------------------------------------------------------------

FIELDS = ["sku", "title", "category", "price", "currency", "rating", "stock", "sizes"]
good = {
    "sku": "S",
    "title": "Trail shoe",
    "category": "Shoes > Running Shoes",
    "price": "79.90",
    "currency": "USD",
    "rating": "4.5",
    "stock": "3",
    "sizes": "8|9",
}
bad_cells = st.sampled_from(
    [
        "",
        " ",
        "-1",
        "abc",
        "nan",
        "inf",
        "1e400",
        "3.5",
        "9" * 400,
        "USDX",
        "A >  > B",
        "\x00",
        "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
        "🙂",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "{{7*7}}",
        '"',
        "x" * 140_000,
    ]
) | st.text(max_size=12)


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> sessionmaker[Session]:
    return make_session_factory(f"sqlite:///{tmp_path_factory.mktemp('prop') / 'import.db'}")


@settings(max_examples=40)
@given(rows=st.lists(st.dictionaries(st.sampled_from(FIELDS), bad_cells), min_size=1, max_size=6))
def test_csv_with_broken_rows_reports_each_and_keeps_the_rest(
    rows: list[dict[str, str]], factory: sessionmaker[Session], tmp_path_factory: Any
) -> None:
    path = tmp_path_factory.mktemp("csv") / "broken.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        writer.writerow([good[f] for f in FIELDS])  # line 2, always good
        for i, row in enumerate(rows):
            writer.writerow([row.get(f, good[f] if f != "sku" else f"S{i}") for f in FIELDS])
    summary = import_csv(factory, path)
    assert summary.rows == summary.imported + summary.updated + summary.skipped
    bad_lines = {e.row for e in summary.errors}
    assert len(bad_lines) == summary.skipped
    assert 2 not in bad_lines
    for err in summary.errors:
        assert err.field in FIELDS and err.message and str(err)
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Product).where(Product.sku == "S"))


products = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values | st.integers(min_value=1, max_value=10**6),
        "title": json_values,
        "category": json_values,
        "price": json_values,
        "rating": json_values,
        "stock": json_values,
        "tags": json_values,
        "reviews": st.lists(
            st.dictionaries(st.sampled_from(["rating", "date", "comment"]), json_values),
            max_size=2,
        )
        | json_values,
        "images": json_values,
        "brand": json_values,
    },
)


@settings(max_examples=40)
@given(items=st.lists(products | json_values, min_size=1, max_size=5))
def test_dummyjson_with_broken_products_reports_each(
    items: list[Any], factory: sessionmaker[Session], tmp_path_factory: Any
) -> None:
    path = tmp_path_factory.mktemp("dj") / "products.json"
    good_item = {"id": 1, "title": "Mug", "category": "kitchen", "price": 9.5, "stock": 2}
    path.write_text(json.dumps({"products": [good_item, *items]}), encoding="utf-8")
    summary = import_dummyjson(factory, path)
    assert summary.rows == len(items) + 1
    assert summary.imported + summary.updated + summary.skipped == summary.rows
    assert 1 not in {e.row for e in summary.errors}
    assert len({e.row for e in summary.errors}) == summary.skipped
    for err in summary.errors:
        assert err.message and str(err)


def test_csv_that_is_not_text_is_rejected_with_a_reason(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty; expected a header row"):
        import_csv(factory, path)
    path.write_bytes(b"\xff\xfe\x00garbage\x00,\x80\x81\n1,2\n")
    with pytest.raises(ValueError, match="no column for required field"):
        import_csv(factory, path)
