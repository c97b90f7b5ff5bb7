"""Rasa lookup tables and synonyms generated from the catalog vocabulary.

The output (``bot/data/generated/lookups.yml``, Rasa 3.x YAML, version "3.1") holds lookup
tables ``brand``, ``colour``, ``material``, ``product_type`` and ``refinement``, synonym
blocks mapping refinement phrases, colour/material aliases and loose brand spellings to
their canonical values, and ``ask_recommendation`` examples naming the catalog's own
product types and brands (:func:`render_requests`). The text is deterministic, so the
model fingerprint only changes when the catalog vocabulary (or the phrase lists here)
change.

Rasa ``re.escape``-s every lookup entry and wraps each in ``\\b``, and it builds one
alternation per table in the order written, so entries are written longest first (a
longer phrase must win over its own prefix: "running shoes" before "running"). Entries
that start or end with a non-word character are trimmed so the ``\\b`` can match.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from tailor.nlu.refine import REFINEMENTS, lookup_phrases
from tailor.nlu.vocab import Vocabulary, leaf_name, singular

__all__ = ["LOOKUP_STOPWORDS", "render_lookups", "render_requests", "write_lookups"]

#: Words never put into a lookup table: as a brand or a type they would match everywhere.
_STOPWORD_TEXT = """
a an and any are as at be best but by can do for from get go good have i in is it me more
my new no not of off on one or our out so some than that the this to top up us we what with
you your yes ok okay show like want need just other else down light dark fit sale
"""
LOOKUP_STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())

HEADER = (
    "# Generated from the catalog by tailor.nlu.lookups (`tailor lookups`); do not edit.\n"
    "# Lookup entries are ordered longest first: Rasa matches them as one alternation.\n"
)


def _boundary_safe(value: str) -> str | None:
    """Trim characters that would stop ``\\b`` from matching; drop unusable entries."""
    value = re.sub(r"\s+", " ", value).strip()
    value = re.sub(r"^\W+|\W+$", "", value)
    if len(value) < 2 or value.lower() in LOOKUP_STOPWORDS:
        return None
    return value


def _ordered(values: Iterable[str]) -> list[str]:
    unique: dict[str, str] = {}
    for v in values:
        safe = _boundary_safe(v)
        if safe is not None:
            unique.setdefault(safe.lower(), safe)
    return sorted(unique.values(), key=lambda s: (-len(s), s.lower(), s))


def _examples(values: Iterable[str]) -> str:
    return "".join(f"    - {v}\n" for v in values)


def _synonyms(vocab: Vocabulary) -> dict[str, list[str]]:
    """canonical value → phrases that mean it (phrase keys unique, case-insensitively)."""
    owner: dict[str, str] = {}

    def add(phrase: str, canonical: str) -> None:
        safe = _boundary_safe(phrase)
        if safe is None or safe.lower() == canonical.lower():
            return
        owner.setdefault(safe.lower(), canonical)  # first meaning wins; later ones skipped

    for canonical, phrases in REFINEMENTS.items():
        for phrase in phrases:
            add(phrase, canonical)
    for phrase, colour in vocab.colour_phrases().items():
        add(phrase, colour)
    for phrase, material in vocab.material_phrases().items():
        add(phrase, material)
    for phrase in vocab.brand_phrases():
        brand = vocab.brand(phrase)
        if brand is not None:
            add(phrase, brand)
    grouped: dict[str, list[str]] = {}
    for phrase, canonical in owner.items():
        grouped.setdefault(canonical, []).append(phrase)
    return {c: sorted(grouped[c]) for c in sorted(grouped, key=lambda c: (c.lower(), c))}


def render_lookups(vocab: Vocabulary) -> str:
    """The lookup-table YAML for ``vocab`` as text (deterministic)."""
    # A brand spelled like a colour, material or product type ("Blue", "Wool") would make
    # "any in blue?" name a brand too; such words stay attributes, never brands.
    attribute_words = {
        p.lower()
        for p in (
            *vocab.colour_phrases(),
            *vocab.material_phrases(),
            *vocab.product_type_phrases(),
        )
    }
    tables: Mapping[str, list[str]] = {
        "brand": _ordered(b for b in vocab.brand_phrases() if b.lower() not in attribute_words),
        "colour": _ordered(vocab.colour_phrases()),
        "material": _ordered(vocab.material_phrases()),
        "product_type": _ordered(vocab.product_type_phrases()),
        "refinement": _ordered(p for phrases in lookup_phrases().values() for p in phrases),
    }
    parts = [HEADER, 'version: "3.1"\n', "nlu:\n"]
    for name, values in tables.items():
        if not values:
            continue  # Rasa warns about lookup tables without examples
        parts.append(f"- lookup: {json.dumps(name)}\n  examples: |\n{_examples(values)}")
    for canonical, phrases in _synonyms(vocab).items():
        parts.append(
            f"- synonym: {json.dumps(canonical, ensure_ascii=False)}\n"
            f"  examples: |\n{_examples(phrases)}"
        )
    requests = render_requests(vocab)
    if requests:
        parts.append(f"- intent: ask_recommendation\n  examples: |\n{_examples(requests)}")
    return "".join(parts)


#: Request templates for generated training examples; ``{t}`` is a product type phrase
#: (annotated), ``{c}`` a colour (annotated), ``{p}`` a person, ``{n}`` a budget.
_REQUEST_TEMPLATES: tuple[str, ...] = (
    "{t}",
    "I need {a} {t}",
    "do you sell {t}?",
    "{c} {t}",
    "looking for {a} {t} for my {p}",
    "{t} under {n}",
    "cheap {t}",
    "can you recommend {a} {t}?",
    "I want to buy {a} {t}",
    "show me some {t}",
    "best {t} for {p}",
    "{t} good quality",
)
_PEOPLE = ("mum", "dad", "son", "daughter", "wife", "husband", "friend", "kids", "office")
_BRAND_TEMPLATES: tuple[str, ...] = (
    "{b}",
    "anything from {b}?",
    "show me {b}",
    "do you have {b} stuff",
)


def render_requests(vocab: Vocabulary, per_type: int = 3, brands: int = 40) -> list[str]:
    """Annotated ``ask_recommendation`` examples naming this catalog's product types and
    brands, so the intent model knows the store's own product words ("vacuum cleaner",
    "yoga mat") as requests, bare or in a sentence. Deterministic: templates and fillers are
    taken in turn over the sorted vocabulary."""
    types = sorted({p for p in (_boundary_safe(t) for t in vocab.product_type_phrases()) if p})
    leaves = sorted(
        {
            leaf_name(path)
            for path in vocab.categories
            if ">" in path and _boundary_safe(leaf_name(path))
        }
    )
    names = [t for t in leaves if t in set(types)] or types
    colours = sorted(c for c in (_boundary_safe(c) for c in vocab.colours) if c) or ["black"]
    out: list[str] = []
    turn = 0
    for name in names:
        for _ in range(per_type):
            template = _REQUEST_TEMPLATES[turn % len(_REQUEST_TEMPLATES)]
            one = singular(name) if "{a}" in template else name
            article = "an" if one[0] in "aeiou" else "a"
            out.append(
                template.format(
                    t=f"[{one}](product_type)",
                    c=f"[{colours[turn % len(colours)]}](colour)",
                    p=_PEOPLE[turn % len(_PEOPLE)],
                    n=f"{(turn % 9 + 1) * 20}",
                    a=article,
                )
            )
            turn += 1
    attribute_words = {p.lower() for p in (*vocab.colour_phrases(), *vocab.material_phrases())}
    attribute_words |= {p.lower() for p in vocab.product_type_phrases()}
    usable = [
        b
        for b in sorted(vocab.brands, key=str.lower)
        if _boundary_safe(b) == b and b.lower() not in attribute_words
    ]
    step = max(1, len(usable) // brands) if usable else 1
    for i, brand in enumerate(usable[::step][:brands]):
        out.append(_BRAND_TEMPLATES[i % len(_BRAND_TEMPLATES)].format(b=f"[{brand}](brand)"))
    return list(dict.fromkeys(out))


def write_lookups(vocab: Vocabulary, path: Path) -> Path:
    """Write the lookup tables for ``vocab`` to ``path`` (folders created); returns ``path``.

    The file is replaced atomically and left untouched when its content would not change.
    """
    path = Path(path)
    text = render_lookups(vocab)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".lookups-", suffix=".yml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
