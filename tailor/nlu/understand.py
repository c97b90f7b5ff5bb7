"""Query understanding before search: spelling fixed against the catalog's own words, the
constraints a message states pulled out as entities, and what is left for semantic search.

"waterproof hikng boots under 120, not Salomon" →

* corrections: hikng → hiking;
* entities: product_type "hiking boots", price (max 120), brand "Salomon" (negated);
* semantic query: "waterproof hiking boots".

Spelling is corrected only for words that are neither catalog words nor common English words
(the word-piece vocabulary of the embedding model), to the catalog word at the smallest
edit distance (optimal string alignment: one edit for words of up to six letters, two
above), the more frequent one on ties. Plurals are handled by the vocabulary's own plural
forms. Pure logic over data given to the constructor; :meth:`QueryUnderstanding.from_session`
reads the catalog.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailor.nlu.lookups import LOOKUP_STOPWORDS
from tailor.nlu.negation import is_negated
from tailor.nlu.price import PriceRange, parse_price, price_spans
from tailor.nlu.vocab import GENERIC_HEADS, Vocabulary, leaf_name, singular

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "QueryUnderstanding",
    "Span",
    "Understanding",
    "known_words_from_model",
    "osa_distance",
]

_TOKEN = re.compile(r"[a-z0-9]+(?:['&-][a-z0-9]+)*")
_WORD = re.compile(r"[a-z0-9]+")

#: Words that say "I want to buy something" but not what; never corrected, never content.
FILLER: frozenset[str] = frozenset(
    """a about after also am an and any anything are as at be best buy can cheap cheaper could
    do does find for from get gift give good got have hello help hey hi how i i'd i'll i'm id
    im in is it just kind like looking me mine my need new nice of on one or our pair please
    product products recommend recommendation recommendations search searching shop shopping
    show some something sort suggest suggestion suggestions than thanks that the their them
    there these thing things this those to try up us want wanted was we what which with would
    you your""".split()  # noqa: SIM905
)

#: Negation cue words removed from the semantic query along with what they negate.
_CUE_WORDS = frozenset(
    """not no without except excluding exclude but other than instead rather don't dont
    doesn't anything nothing none minus avoid hate dislike""".split()  # noqa: SIM905
)

_LEAD_FILLER = re.compile(
    r"^\s*(?:(?:hi|hey|hello)\b[\s,!.]*)?"
    r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?"
    r"(?:show|find|recommend|suggest|get|give|help\s+me\s+(?:find|choose|pick))(?:\s+me)?"
    r"|(?:i'?m|i\s+am|we'?re|we\s+are)\s+(?:looking|searching|shopping|hunting)\s+(?:for|around\s+for)"
    r"|(?:i|we)\s+(?:(?:really\s+)?(?:want|need)|would\s+like|'d\s+like|d\s+like)"
    r"(?:\s+to\s+(?:buy|get|find|see|order))?"
    r"|(?:please\s+)?(?:show|find|get|give)\s+me"
    r"|(?:looking|searching|shopping)\s+for"
    r"|do\s+you\s+(?:have|sell|carry|stock)"
    r"|(?:any|some)\s+(?:recommendations?|suggestions?|ideas?)\s+for"
    r"|(?:recommend|suggest)(?:\s+me)?)\b\s*",
    re.IGNORECASE,
)
_LEAD_ARTICLE = re.compile(r"^\s*(?:a|an|some|any|the|a\s+pair\s+of|pairs?\s+of)\s+", re.IGNORECASE)
_TRAIL_FILLER = re.compile(r"[\s,]*(?:please|pls|plz|thanks|thank\s+you|thx)?[\s?!.,]*$", re.I)
_SIZE = re.compile(
    r"\b(?:size|sz)\s*([0-9]{1,2}(?:\.5)?|xxs|xs|s|m|l|xl|xxl|xxxl|small|medium|large)\b"
    r"|\b(xxs|xs|xl|xxl|xxxl)\b",
    re.IGNORECASE,
)

_INFINITIVE = re.compile(r"\bto\s+$")

#: Which entity wins where spans overlap (first wins), as in the criteria layer.
_PRIORITY = ("price", "colour", "material", "size", "product_type", "brand")


@dataclass(frozen=True)
class Span:
    """An entity found in a message; ``start``/``end`` index the *original* text."""

    entity: str
    value: str
    start: int
    end: int
    text: str
    negated: bool = False
    corrected_from: str | None = None

    def as_rasa(self) -> dict[str, Any]:
        """The entity as Rasa would report it (what the criteria layer reads)."""
        return {
            "entity": self.entity,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "extractor": "QueryUnderstanding",
        }


@dataclass(frozen=True)
class Understanding:
    """What one message asks for."""

    text: str
    corrected: str
    semantic: str
    spans: tuple[Span, ...] = ()
    price: PriceRange | None = None
    corrections: tuple[tuple[str, str], ...] = ()
    content_words: tuple[str, ...] = ()
    catalog_words: tuple[str, ...] = field(default=())

    def first(self, entity: str, negated: bool | None = None) -> Span | None:
        """The first span of ``entity`` (optionally only negated / not negated ones)."""
        for span in self.spans:
            if span.entity == entity and (negated is None or span.negated == negated):
                return span
        return None

    def values(self, entity: str, negated: bool = False) -> list[str]:
        """Canonical values of ``entity`` spans with the given polarity, in text order."""
        return [s.value for s in self.spans if s.entity == entity and s.negated == negated]

    @property
    def coverage(self) -> float:
        """Share of the content words (not filler) that are catalog words; 0 with none."""
        if not self.content_words:
            return 0.0
        return len(self.catalog_words) / len(self.content_words)

    @property
    def names_product(self) -> bool:
        """True when the message names a product type or a brand of the catalog."""
        return any(s.entity in ("product_type", "brand") and not s.negated for s in self.spans)


def osa_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    adjacent letters each cost 1 ("hikng"/"hiking" → 1, "haedphones"/"headphones" → 1).

    A plain reference implementation; the corrector uses ``rapidfuzz``'s, which agrees.
    """
    rows = len(a) + 1
    cols = len(b) + 1
    d = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        d[i][0] = i
    for j in range(cols):
        d[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def known_words_from_model(model_path: str | Path) -> frozenset[str]:
    """Whole English words of a BERT-style model's ``vocab.txt`` (no "##" pieces, no
    "[CLS]"-style markers), lower case; empty when the file is missing."""
    path = Path(model_path) / "vocab.txt"
    if not path.is_file():
        return frozenset()
    words: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            w = line.strip()
            if w and w.isalpha() and w.isascii() and not w.startswith("##"):
                words.add(w.lower())
    return frozenset(words)


def _max_edits(word: str) -> int:
    return 1 if len(word) <= 6 else 2


class QueryUnderstanding:
    """Reads a message against the catalog: spelling, entities, semantic remainder.

    ``catalog_words`` maps each lower-case word of the catalog (titles, categories, brands,
    tags, colours, materials) to how often it occurs; ``known_words`` are English words that
    are never "corrected" even when the catalog does not use them.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        catalog_words: Mapping[str, int],
        known_words: Iterable[str] = (),
    ) -> None:
        self.vocab = vocab
        self.catalog_words: dict[str, int] = {
            w.lower(): int(n) for w, n in catalog_words.items() if w
        }
        for phrase in (
            list(vocab.product_type_phrases())
            + list(vocab.brand_phrases())
            + list(vocab.colour_phrases())
            + list(vocab.material_phrases())
        ):
            for w in _WORD.findall(phrase.lower()):
                self.catalog_words.setdefault(w, 1)
        self.known_words = frozenset(w.lower() for w in known_words)
        self._by_length: dict[int, list[str]] = {}
        for w in self.catalog_words:
            if w.isalpha() and len(w) >= 3:
                self._by_length.setdefault(len(w), []).append(w)
        self._tables = self._build_tables()

    @classmethod
    def from_session(
        cls, session: Session, vocab: Vocabulary, known_words: Iterable[str] = ()
    ) -> QueryUnderstanding:
        """Count the catalog's words from the products table."""
        from sqlalchemy import select

        from tailor.store.models import Product

        counts: Counter[str] = Counter()
        rows = session.execute(select(Product.title, Product.category, Product.brand, Product.tags))
        for title, category, brand, tags in rows:
            text = " ".join([title or "", category or "", brand or "", *(tags or [])])
            counts.update(_WORD.findall(text.lower()))
        return cls(vocab, counts, known_words)

    # -- tables ---------------------------------------------------------------------------

    def _build_tables(self) -> list[tuple[str, re.Pattern[str], dict[str, str]]]:
        def table(phrases: Mapping[str, str]) -> tuple[re.Pattern[str], dict[str, str]]:
            usable = {
                p.lower(): v
                for p, v in phrases.items()
                if len(p) >= 2 and p.lower() not in LOOKUP_STOPWORDS
            }
            ordered = sorted(usable, key=lambda p: (-len(p), p))
            if not ordered:
                return re.compile(r"(?!x)x"), {}
            alternation = "|".join(re.escape(p) for p in ordered)
            return re.compile(rf"(?<![\w'])(?:{alternation})(?![\w'])"), usable

        types = {p: p for p in self.vocab.product_type_phrases()}
        brands = {p: self.vocab.brand(p) or p for p in self.vocab.brand_phrases()}
        # "legos", "nikes": a brand in the plural names the brand's products
        for phrase, brand in list(brands.items()):
            if phrase[-1:].isalpha() and not phrase.lower().endswith("s"):
                brands.setdefault(phrase + "s", brand)
        colours = dict(self.vocab.colour_phrases())
        materials = dict(self.vocab.material_phrases())
        out = []
        for name, phrases in (
            ("colour", colours),
            ("material", materials),
            ("product_type", types),
            ("brand", brands),
        ):
            pattern, values = table(phrases)
            out.append((name, pattern, values))
        return out

    # -- spelling -------------------------------------------------------------------------

    def correct_word(self, word: str) -> str | None:
        """The catalog word ``word`` is a misspelling of, or ``None`` when it is a known
        word, too short (under four letters), not alphabetic, or nothing is close enough."""
        w = word.lower()
        if (
            len(w) < 4
            or not w.isalpha()
            or w in self.catalog_words
            or w in self.known_words
            or w in FILLER
            or w in _CUE_WORDS
        ):
            return None
        if self._is_inflection(w):
            return None
        from rapidfuzz.distance import OSA

        limit = _max_edits(w)
        best: tuple[int, int, str] | None = None
        for length in range(len(w) - limit, len(w) + limit + 1):
            for cand in self._by_length.get(length, ()):
                dist = OSA.distance(w, cand, score_cutoff=limit)
                if dist > limit:
                    continue
                key = (dist, -self.catalog_words[cand], cand)
                if best is None or key < best:
                    best = key
        return best[2] if best else None

    def _known(self, word: str) -> bool:
        return word in self.catalog_words or word in self.known_words

    def _is_inflection(self, word: str) -> bool:
        """A plural or possessive of a known word ("mens", "womens") or a known word's
        stem ("commute" of "commuter"): a real word, not a typo."""
        for suffix in ("s", "es", "'s"):
            if word.endswith(suffix) and self._known(word[: -len(suffix)]):
                return True
        return any(self._known(word + suffix) for suffix in ("s", "es", "r", "er"))

    # -- the whole message ----------------------------------------------------------------

    def understand(self, text: str) -> Understanding:
        """Read ``text``: corrections, entity spans (on the original text), price band and
        the semantic query left once the constraints and request filler are removed."""
        original = text or ""
        # lower-case without changing the length ("İ".lower() has two characters)
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in original)
        lowered = lowered.replace("\u2019", "'")

        # 1. spelling: rebuild the text word by word, keeping an offset map back.
        pieces: list[str] = []
        back: list[int] = []  # corrected index -> original start of that character
        back_end: list[int] = []  # corrected index -> original end of that character
        corrections: list[tuple[str, str]] = []
        pos = 0
        for m in _TOKEN.finditer(lowered):
            gap = lowered[pos : m.start()]
            pieces.append(gap)
            back.extend(range(pos, m.start()))
            back_end.extend(range(pos + 1, m.start() + 1))
            word = m.group(0)
            fixed = self.correct_word(word)
            if fixed and fixed != word:
                corrections.append((original[m.start() : m.end()], fixed))
                pieces.append(fixed)
                # a corrected word maps onto the whole original word
                back.extend([m.start()] * len(fixed))
                back_end.extend([m.end()] * len(fixed))
            else:
                pieces.append(word)
                back.extend(range(m.start(), m.end()))
                back_end.extend(range(m.start() + 1, m.end() + 1))
            pos = m.end()
        pieces.append(lowered[pos:])
        back.extend(range(pos, len(lowered)))
        back_end.extend(range(pos + 1, len(lowered) + 1))
        back.append(len(lowered))
        corrected = "".join(pieces)
        fixed_words = {fixed for _, fixed in corrections}

        def orig(start: int, end: int) -> tuple[int, int]:
            return back[start], back_end[end - 1] if end > start else back[start]

        # 2. entities on the corrected text
        found: list[tuple[str, str, int, int]] = []
        rng = parse_price(corrected)
        cut: list[tuple[int, int]] = list(price_spans(corrected)) if rng else []
        for s, e in cut:
            found.append(("price", corrected[s:e], s, e))
        for m in _SIZE.finditer(corrected):
            value = (m.group(1) or m.group(2) or "").upper()
            found.append(("size", value if not value.isdigit() else m.group(1), *m.span()))
        for name, pattern, values in self._tables:
            for m in pattern.finditer(corrected):
                if name == "product_type" and _INFINITIVE.search(corrected[: m.start()]):
                    continue  # "a movie to watch": a verb, not the product
                found.append((name, values.get(m.group(0), m.group(0)), *m.span()))
        found.extend(self._split_brands(corrected))
        rank = {n: i for i, n in enumerate(_PRIORITY)}
        kept: list[tuple[str, str, int, int]] = []
        for ent in sorted(found, key=lambda f: (rank[f[0]], -(f[3] - f[2]), f[2])):
            if any(k[2] < ent[3] and ent[2] < k[3] for k in kept):
                continue
            kept.append(ent)
        kept.extend(self._brand_heads(corrected, kept))
        kept.sort(key=lambda f: f[2])

        spans: list[Span] = []
        for name, value, s, e in kept:
            if name == "price":
                continue
            negated = name in ("brand", "colour", "material") and is_negated(corrected, s, e)
            o_s, o_e = orig(s, e)
            surface = original[o_s:o_e]
            was = surface if surface.lower() != corrected[s:e] else None
            spans.append(
                Span(name, value, o_s, o_e, surface, negated, was if was is not None else None)
            )
            if negated:
                cut.append((self._cue_start(corrected, s), e))
            elif name in ("brand", "size"):
                lead = re.search(r"(?:\b(?:from|by|made\s+by|of)\s+)$", corrected[:s])
                cut.append((lead.start() if lead and name == "brand" else s, e))
        if rng is not None:
            for s, e in price_spans(corrected):
                o_s, o_e = orig(s, e)
                spans.append(Span("price", original[o_s:o_e], o_s, o_e, original[o_s:o_e]))
            spans.sort(key=lambda sp: sp.start)

        # 3. the semantic remainder
        semantic = self._remainder(corrected, cut)
        # specs and model numbers ("32oz", "144hz", "a5", "20000mah") say nothing about scope
        words = [
            w
            for w in _TOKEN.findall(semantic)
            if w not in FILLER and not any(ch.isdigit() for ch in w)
        ]
        catalog = tuple(
            w for w in words if w in self.catalog_words or w in fixed_words or _is_unit(w)
        )
        return Understanding(
            text=original,
            corrected=corrected,
            semantic=semantic,
            spans=tuple(spans),
            price=rng,
            corrections=tuple(corrections),
            content_words=tuple(words),
            catalog_words=catalog,
        )

    def _split_brands(self, text: str) -> list[tuple[str, str, int, int]]:
        """Brands written as two words ("otter box" for OtterBox, "de walt"): adjacent
        words whose letters together are a brand's and neither of which is one alone."""
        words = list(_WORD.finditer(text))
        out = []
        for a, b in itertools.pairwise(words):
            if text[a.end() : b.start()] != " " or len(a.group(0)) + len(b.group(0)) < 5:
                continue
            if self.vocab.brand(a.group(0)) or self.vocab.brand(b.group(0)):
                continue
            brand = self.vocab.brand(a.group(0) + b.group(0))
            if brand is not None:
                out.append(("brand", brand, a.start(), b.end()))
        return out

    def _brand_heads(
        self, text: str, kept: Sequence[tuple[str, str, int, int]]
    ) -> list[tuple[str, str, int, int]]:
        """With a brand and no product type, a generic word the brand makes one kind of
        product by ("nespresso machine": Coffee Machines; "otterbox case": Phone Cases) is
        that product type (see :meth:`Vocabulary.brand_category`); the value is the
        category's own name, so the criteria resolve it as any named type."""
        if any(k[0] == "product_type" for k in kept):
            return []
        brands = [k for k in kept if k[0] == "brand" and not is_negated(text, k[2], k[3])]
        if not brands:
            return []
        for m in _WORD.finditer(text):
            if singular(m.group(0)) not in GENERIC_HEADS:
                continue
            if any(k[2] < m.end() and m.start() < k[3] for k in kept):
                continue
            for brand in brands:
                path = self.vocab.brand_category(brand[1], m.group(0))
                if path is not None:
                    return [("product_type", leaf_name(path), m.start(), m.end())]
        return []

    @staticmethod
    def _cue_start(text: str, start: int) -> int:
        """Where the negation governing a span begins: walk left over cue words and the
        fillers a negation allows ("anything but", "not in", "no more of")."""
        i = start
        allowed = _CUE_WORDS | {"in", "from", "by", "of", "made", "any", "more", "a", "an"}
        allowed |= {"like", "want", "need", "do", "does", "i", "really", "the", "fan"}
        while True:
            m = re.search(r"([a-z']+)\s*$", text[:i])
            if not m or m.group(1) not in allowed:
                return i
            i = m.start()

    @staticmethod
    def _remainder(text: str, cut: Iterable[tuple[int, int]]) -> str:
        keep = list(text)
        for s, e in cut:
            for i in range(s, min(e, len(keep))):
                keep[i] = " "
        rest = "".join(keep)
        rest = re.sub(r"\s*[,;]\s*(?=[,;]|$)", " ", rest)
        for _ in range(2):
            rest = _LEAD_FILLER.sub("", rest)
            rest = _LEAD_ARTICLE.sub("", rest)
        rest = _TRAIL_FILLER.sub("", rest)
        rest = re.sub(r"\b(?:please|pls|plz)\b", " ", rest)
        rest = re.sub(r"\s+", " ", rest).strip(" ,;:.!?-")
        return rest


_UNITS = frozenset({"cm", "mm", "ml", "inch", "inches", "oz", "gb", "tb", "mah", "w", "kg"})


def _is_unit(word: str) -> bool:
    return word in _UNITS
