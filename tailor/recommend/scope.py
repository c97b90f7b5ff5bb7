"""Is a message about this store's products? Two decisions the dialogue layer cannot make
alone, because only the catalog knows its own words:

* :func:`is_bare_product_phrase` — a message the NLU model called out of scope (or was
  unsure of) is still a request when it is a short product phrase made of catalog words:
  "gaming mouse cheap", "yoga mat thick", "phone case glitter pink".
* :func:`is_product_request` — the same for a longer message that is close to a catalog
  product in embedding space and asks for something ("I need a new vacuum cleaner").
* :func:`is_grounded` — a message the NLU model called a request only gets suggestions when
  something in it ties it to the catalog (a product type, brand, colour, material, size or
  price, or mostly catalog words); "can you recommend a good restaurant nearby" does not.

Pure functions of :class:`~tailor.nlu.understand.Understanding`; thresholds are arguments
with the defaults measured in docs/quality.md.
"""

from __future__ import annotations

import re

from tailor.nlu.understand import Understanding

__all__ = [
    "MIN_SIMILARITY_GROUNDED",
    "MIN_SIMILARITY_NAMED",
    "MIN_SIMILARITY_OVERRULE",
    "is_bare_product_phrase",
    "is_grounded",
    "is_product_request",
]

#: A message opening like a question or a command to an assistant is not a bare phrase.
_NOT_A_PHRASE = re.compile(
    r"^\s*(?:how|what|what's|whats|when|where|why|who|whose|which|is|are|am|was|were|can|"
    r"could|should|would|will|do|does|did|have|has|tell|set|book|call|play|remind|cancel|"
    r"transfer|pay|check|change|turn|make|give|let|i|i'm|im|my|please|help|find|order)\b",
    re.IGNORECASE,
)


def is_bare_product_phrase(
    u: Understanding, max_words: int = 6, min_coverage: float = 0.75, brand_words: int = 3
) -> bool:
    """True for a short phrase naming catalog products without a request verb.

    It must not open like a question or command, have at most ``max_words`` content words,
    and either name a product type or brand of the catalog with at least ``min_coverage``
    of its other content words being catalog words (a brand alone qualifies), or consist
    only of catalog words (two or more).
    """
    if _NOT_A_PHRASE.match(u.text) or len(u.content_words) > max_words:
        return False
    if u.names_product:
        # a brand alone ("kindle", "fitbit") has no content words left: that is fine; a
        # brand with a few words of its own ("lego star wars") is a product name too
        brand = any(s.entity == "brand" and not s.negated for s in u.spans)
        if not u.content_words or (brand and len(u.content_words) <= brand_words):
            return True
        return u.coverage >= min_coverage
    return len(u.content_words) >= 2 and u.coverage >= 1.0


#: Words that make a message a request for something ("I need …", "do you sell …").
_REQUEST_CUE = re.compile(
    r"\b(?:need|needs|want|wants|looking\s+for|look\s+for|after\s+a|recommend|suggest|"
    r"do\s+you\s+(?:have|sell|carry|stock)|show\s+me|find\s+me|gift|present|buy|get\s+(?:a|an|some)|"
    r"which|what(?:'s|\s+is)?\s+(?:a\s+)?(?:good|best)|any\s+(?:good|ideas?)|is\s+there\s+a)\b",
    re.IGNORECASE,
)

#: Top-1 cosine similarity between a message and the closest product above which an
#: out-of-scope verdict is overruled, and below which a request is not about the catalog
#: (measured on CLINC150 *train* against the demo catalog, docs/quality.md).
MIN_SIMILARITY_OVERRULE = 0.45
MIN_SIMILARITY_NAMED = 0.35
MIN_SIMILARITY_GROUNDED = 0.35


def is_product_request(
    u: Understanding,
    similarity: float,
    min_similarity: float = MIN_SIMILARITY_OVERRULE,
    min_similarity_named: float = MIN_SIMILARITY_NAMED,
) -> bool:
    """For a message the NLU model called out of scope or was unsure of: is it a product
    request after all? Yes for a bare product phrase; for a message naming a catalog
    product type or brand that asks for something or is mostly catalog words, when its
    similarity to the closest product (top-1 cosine) reaches ``min_similarity_named``; for
    any message that asks for something or is mostly catalog words, from
    ``min_similarity``."""
    if is_bare_product_phrase(u):
        return True
    asks = bool(_REQUEST_CUE.search(u.text)) or u.coverage >= 0.5
    if u.names_product and asks and similarity >= min_similarity_named:
        return True
    return asks and similarity >= min_similarity


def is_grounded(
    u: Understanding,
    similarity: float | None = None,
    min_coverage: float = 0.5,
    min_similarity: float = MIN_SIMILARITY_GROUNDED,
) -> bool:
    """True when a request names something of the catalog (type, brand, colour, material,
    size, price), at least ``min_coverage`` of its content words are catalog words, or it is
    close to a catalog product (``similarity`` ≥ ``min_similarity``)."""
    if any(not s.negated for s in u.spans):
        return True
    if u.coverage >= min_coverage:
        return True
    return similarity is not None and similarity >= min_similarity
