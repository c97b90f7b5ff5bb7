"""Hybrid product search: dense (FAISS) and lexical (BM25) results fused, by default with a
convex combination of min-max normalised scores, or by reciprocal rank fusion (Cormack et
al., 2009). Dense-only and lexical-only stay available for comparison.

On Abt-Buy (docs/retrieval-eval.md) plain RRF with k=60 lands between the two rankers
(it discards how far ahead BM25's exact model-number match is); the convex fusion with
equal weights beats both, which is why it is the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from tailor.retrieval.engine import Hit, ProductSearch
from tailor.retrieval.filters import Filter
from tailor.retrieval.lexical import LexicalIndex

__all__ = ["FUSIONS", "MODES", "HybridSearch", "Mode", "convex_fuse", "rescale", "rrf_fuse"]

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[Mode, ...] = ("lexical", "dense", "hybrid")
FUSIONS: tuple[str, ...] = ("rrf", "convex")


def rrf_fuse(
    rankings: Sequence[Sequence[int]],
    k: int = 60,
    weights: Sequence[float] | None = None,
) -> list[Hit]:
    """Fuse ranked id lists: ``score(d) = Σ_i w_i / (k + rank_i(d))`` with 1-based ranks,
    summed over the lists that contain ``d``. Best first; ties by first appearance.

    ``rrf_fuse([[1, 2], [2, 3]], k=1)`` → 2: 1/3 + 1/2, 1: 1/2, 3: 1/3.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"got {len(weights)} weights for {len(rankings)} rankings")
    if k < 0:
        raise ValueError("k must be 0 or more")
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, pid in enumerate(ranking, start=1):
            scores[int(pid)] = scores.get(int(pid), 0.0) + weight / (k + rank)
    order = sorted(scores.items(), key=lambda item: -item[1])  # stable: first seen wins ties
    return [Hit(pid, score) for pid, score in order]


def convex_fuse(
    scored: Sequence[Sequence[Hit]], weights: Sequence[float] | None = None
) -> list[Hit]:
    """Fuse scored lists by a weighted sum of min-max normalised scores: in each list the
    best score becomes 1 and the worst 0 (a single hit or equal scores all become 1); a
    product missing from a list gets 0 there. Best first; ties by first appearance.

    Unlike RRF this keeps how *confident* each ranker is, e.g. a BM25 exact model-number
    match far above the rest.
    """
    if weights is None:
        weights = [1.0] * len(scored)
    if len(weights) != len(scored):
        raise ValueError(f"got {len(weights)} weights for {len(scored)} lists")
    total: dict[int, float] = {}
    for hits, weight in zip(scored, weights, strict=True):
        if not hits:
            continue
        values = [h.score for h in hits]
        lo, hi = min(values), max(values)
        span = hi - lo
        for h in hits:
            norm = (h.score - lo) / span if span > 0 else 1.0
            total[h.product_id] = total.get(h.product_id, 0.0) + weight * norm
        for h in hits:  # make sure every listed product appears even with weight 0
            total.setdefault(h.product_id, 0.0)
    order = sorted(total.items(), key=lambda item: -item[1])
    return [Hit(pid, score) for pid, score in order]


def rescale(fused: Sequence[Hit], dense: Sequence[Hit]) -> list[Hit]:
    """Map fusion scores linearly onto the dense scores' range: the best fused hit gets the
    best dense similarity, the worst the worst; order is unchanged. Without dense hits (or a
    single fused hit) the scores are returned as they are.

    ``rescale([Hit(1, 2.0), Hit(2, 1.0), Hit(3, 0.0)], dense with scores 0.8..0.4)`` →
    scores 0.8, 0.6, 0.4.
    """
    if not fused or not dense:
        return list(fused)
    f_hi, f_lo = max(h.score for h in fused), min(h.score for h in fused)
    d_hi, d_lo = max(h.score for h in dense), min(h.score for h in dense)
    if f_hi == f_lo:
        return [Hit(h.product_id, d_hi) for h in fused]
    span = (d_hi - d_lo) / (f_hi - f_lo)
    return [Hit(h.product_id, d_lo + (h.score - f_lo) * span) for h in fused]


class HybridSearch:
    """Dense + lexical search over the same products, with the dense engine's exact filters.

    ``depth`` is how many candidates each ranker contributes before fusion; ``fusion`` is
    "rrf" (:func:`rrf_fuse` with ``rrf_k``) or "convex" (:func:`convex_fuse`); ``weights``
    are the fusion weights of the (dense, lexical) lists. With ``dense_scale`` hybrid scores
    are mapped onto the range of the dense similarities (:func:`rescale`), for callers that
    add other terms to a cosine-scaled relevance.
    """

    def __init__(
        self,
        dense: ProductSearch,
        lexical: LexicalIndex,
        *,
        rrf_k: int = 60,
        weights: tuple[float, float] = (1.0, 1.0),
        depth: int = 100,
        fusion: str = "convex",
        dense_scale: bool = False,
    ) -> None:
        if fusion not in FUSIONS:
            raise ValueError(f"Unknown fusion {fusion!r}; valid fusions are {list(FUSIONS)}")
        self.fusion = fusion
        self.dense = dense
        self.lexical = lexical
        self.rrf_k = rrf_k
        self.weights = weights
        self.depth = depth
        self.dense_scale = dense_scale

    def search(
        self,
        query: str,
        k: int = 10,
        flt: Filter | None = None,
        mode: Mode = "hybrid",
        weights: Mapping[str, float] | tuple[float, float] | None = None,
    ) -> list[Hit]:
        """The ``k`` best products for ``query`` in ``mode`` ("hybrid", "dense", "lexical"),
        never violating ``flt``. Hybrid scores are fusion scores, not similarities."""
        if mode not in MODES:
            raise ValueError(f"Unknown search mode {mode!r}; valid modes are {list(MODES)}")
        if k <= 0:
            return []
        if mode == "dense":
            return self.dense.search(query, k, flt)
        allowed = self.dense._allowed(flt)
        if allowed is not None and allowed.size == 0:
            return []
        if mode == "lexical":
            return self.lexical.search(query, k, allowed)
        depth = max(k, self.depth)
        dense = self.dense.search(query, depth, flt)
        lexical = self.lexical.search(query, depth, allowed)
        w = self.weights if weights is None else weights
        if isinstance(w, Mapping):
            w = (float(w.get("dense", 1.0)), float(w.get("lexical", 1.0)))
        if self.fusion == "convex":
            fused = convex_fuse([dense, lexical], weights=list(w))[:k]
        else:
            rankings = [[h.product_id for h in dense], [h.product_id for h in lexical]]
            fused = rrf_fuse(rankings, k=self.rrf_k, weights=list(w))[:k]
        return rescale(fused, dense) if self.dense_scale else fused
