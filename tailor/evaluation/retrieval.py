"""Offline evaluation of product retrieval: lexical (BM25), dense (FAISS) and hybrid (RRF).

A dataset is a folder of three CSV files (UTF-8, header row; see ``docs/retrieval-eval.md``):

* ``corpus.csv``: ``id,title,description`` and optionally ``price,brand``, the catalog;
* ``queries.csv``: ``id,text``, one search per row;
* ``qrels.csv``: ``query_id,corpus_id``, one relevant product per row (several per query
  allowed; queries without a relevant product are dropped).

:func:`load_abt_buy` adapts the Abt-Buy layout (``Abt.csv``, ``Buy.csv``,
``matches_dev.csv``): each Buy listing named in the matches is a query, the Abt listings
are the catalog. :func:`run_retrieval_eval` imports the catalog into a temporary SQLite
store with the project's importer (:func:`tailor.store.upsert_products`), builds the dense
and lexical indexes, ranks every query once per ranker and scores the three modes.
"""

from __future__ import annotations

import csv
import io
import math
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tailor.retrieval.embed import Embedder
from tailor.retrieval.engine import Hit, ProductSearch
from tailor.retrieval.hybrid import convex_fuse, rrf_fuse
from tailor.retrieval.lexical import LexicalIndex
from tailor.retrieval.text import product_text
from tailor.store.catalog import ProductRecord, upsert_products
from tailor.store.db import make_session_factory, session_scope
from tailor.store.models import Product

__all__ = [
    "DATASET_FORMATS",
    "CorpusDoc",
    "EvalRow",
    "RetrievalDataset",
    "RetrievalReport",
    "evaluate_rankings",
    "load_abt_buy",
    "load_dataset",
    "load_folder",
    "mrr",
    "ndcg_at_k",
    "recall_at_k",
    "run_retrieval_eval",
]

#: Category given to every imported evaluation product (the importer requires one).
EVAL_CATEGORY = "Evaluation"


# --- metrics (binary relevance) ---------------------------------------------------------------


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Share of the relevant ids found in the first ``k`` of ``ranked`` (0 if none relevant)."""
    rel = set(relevant)
    if not rel:
        return 0.0
    return len(rel.intersection(ranked[:k])) / len(rel)


def precision_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Share of the first ``k`` results that are relevant (a short list still divides by
    ``k``): ``precision_at_k(["d1", "d2", "d3"], {"d2", "d9"}, 2)`` → 0.5."""
    if k <= 0:
        raise ValueError("k must be at least 1")
    rel = set(relevant)
    return sum(1 for d in ranked[:k] if d in rel) / k


def curves(
    rankings: dict[str, list[str]], qrels: dict[str, set[str]], max_k: int = 10
) -> list[tuple[int, float, float]]:
    """``(k, mean precision@k, mean recall@k)`` for k = 1..``max_k`` over the queries that
    have relevance judgements."""
    qs = [q for q in rankings if q in qrels]
    if not qs:
        return []
    n = len(qs)
    return [
        (
            k,
            sum(precision_at_k(rankings[q], qrels[q], k) for q in qs) / n,
            sum(recall_at_k(rankings[q], qrels[q], k) for q in qs) / n,
        )
        for k in range(1, max_k + 1)
    ]


def mrr(ranked: Sequence[str], relevant: Iterable[str]) -> float:
    """Reciprocal rank of the first relevant id in ``ranked`` (0 when none is found)."""
    rel = set(relevant)
    for rank, doc in enumerate(ranked, start=1):
        if doc in rel:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    """Binary NDCG@k: ``Σ 1/log2(rank+1)`` over relevant hits in the first ``k``, divided by
    the same sum for an ideal ranking (all relevant ids first)."""
    rel = set(relevant)
    if not rel or k <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if doc in rel)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), k)))
    return dcg / ideal


# --- datasets --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusDoc:
    """One catalog listing of a dataset."""

    id: str
    title: str
    description: str = ""
    price: float | None = None
    brand: str | None = None


@dataclass
class RetrievalDataset:
    """Catalog, queries (``id → text``, file order) and relevance (``query id → corpus ids``)."""

    name: str
    corpus: list[CorpusDoc]
    queries: dict[str, str]
    qrels: dict[str, set[str]]

    def __post_init__(self) -> None:
        ids = [d.id for d in self.corpus]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.name}: corpus ids are not unique")
        known = set(ids)
        self.qrels = {
            q: {c for c in rel if c in known} for q, rel in self.qrels.items() if q in self.queries
        }
        self.qrels = {q: rel for q, rel in self.qrels.items() if rel}
        self.queries = {q: t for q, t in self.queries.items() if q in self.qrels}
        if not self.queries:
            raise ValueError(f"{self.name}: no query has a relevant document in the corpus")


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise ValueError(f"missing file {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValueError(f"{path.name}: missing column(s) {missing}; it has {columns}")
    return [
        {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader
    ]


def _price(value: str | None) -> float | None:
    text = (value or "").replace("$", "").replace(",", "").strip()
    try:
        return round(float(text), 2) if text else None
    except ValueError:
        return None


def _qrels(rows: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for query_id, corpus_id in rows:
        out.setdefault(query_id, set()).add(corpus_id)
    return out


def load_folder(path: str | Path) -> RetrievalDataset:
    """A dataset in the simple format: ``corpus.csv``, ``queries.csv``, ``qrels.csv``."""
    path = Path(path)
    corpus = [
        CorpusDoc(
            r["id"],
            r["title"],
            r.get("description", ""),
            _price(r.get("price")),
            r.get("brand") or None,
        )
        for r in _read_csv(path / "corpus.csv", ("id", "title"))
    ]
    queries = {r["id"]: r["text"] for r in _read_csv(path / "queries.csv", ("id", "text"))}
    rel = _read_csv(path / "qrels.csv", ("query_id", "corpus_id"))
    return RetrievalDataset(
        path.name, corpus, queries, _qrels((r["query_id"], r["corpus_id"]) for r in rel)
    )


def load_abt_buy(path: str | Path) -> RetrievalDataset:
    """Abt-Buy: Buy listings named in ``matches_dev.csv`` are the queries (name, manufacturer
    and description joined), all Abt listings the catalog, the matches the relevance."""
    path = Path(path)
    corpus = [
        CorpusDoc(r["id"], r["name"], r.get("description", ""), _price(r.get("price")))
        for r in _read_csv(path / "Abt.csv", ("id", "name"))
    ]
    matches = _read_csv(path / "matches_dev.csv", ("idabt", "idbuy"))
    wanted = {r["idbuy"] for r in matches}
    queries: dict[str, str] = {}
    for r in _read_csv(path / "Buy.csv", ("id", "name")):
        if r["id"] in wanted:
            parts = [r["name"], r.get("manufacturer", ""), r.get("description", "")]
            queries[r["id"]] = ". ".join(p for p in parts if p)
    return RetrievalDataset(
        "abt-buy", corpus, queries, _qrels((r["idbuy"], r["idabt"]) for r in matches)
    )


#: ``--dataset`` names → loaders.
DATASET_FORMATS: dict[str, Callable[[str | Path], RetrievalDataset]] = {
    "folder": load_folder,
    "abt-buy": load_abt_buy,
}


def load_dataset(kind: str, path: str | Path) -> RetrievalDataset:
    """Load ``path`` with the loader named ``kind`` (see :data:`DATASET_FORMATS`)."""
    if kind not in DATASET_FORMATS:
        raise ValueError(f"Unknown dataset {kind!r}; valid datasets are {list(DATASET_FORMATS)}")
    return DATASET_FORMATS[kind](path)


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalRow:
    """Mean metrics of one ranker over a set of queries."""

    mode: str
    queries: int
    recall_1: float
    recall_k: float
    mrr: float
    ndcg_k: float


def evaluate_rankings(
    mode: str, rankings: dict[str, list[str]], qrels: dict[str, set[str]], k: int
) -> EvalRow:
    """Mean Recall@1, Recall@k, MRR (over the whole ranking) and NDCG@k of ``rankings``."""
    qs = [q for q in rankings if q in qrels]
    if not qs:
        return EvalRow(mode, 0, 0.0, 0.0, 0.0, 0.0)
    n = len(qs)
    return EvalRow(
        mode,
        n,
        sum(recall_at_k(rankings[q], qrels[q], 1) for q in qs) / n,
        sum(recall_at_k(rankings[q], qrels[q], k) for q in qs) / n,
        sum(mrr(rankings[q], qrels[q]) for q in qs) / n,
        sum(ndcg_at_k(rankings[q], qrels[q], k) for q in qs) / n,
    )


@dataclass
class RetrievalReport:
    """Results on all queries, and on a held-out half with RRF weights tuned on the other."""

    dataset: str
    k: int
    corpus_size: int
    rows: list[EvalRow]
    split_rows: list[EvalRow] = field(default_factory=list)
    tuned: dict[str, float | str] = field(default_factory=dict)
    seconds: float = 0.0
    date: str = ""
    #: method → [(k, precision@k, recall@k)] on all queries, k = 1..10
    curves: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)

    def markdown(self) -> str:
        """The results as markdown tables."""
        k = self.k

        def table(rows: list[EvalRow]) -> list[str]:
            out = [
                f"| mode | queries | Recall@1 | Recall@{k} | MRR | NDCG@{k} |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            out += [
                f"| {r.mode} | {r.queries} | {r.recall_1:.3f} | {r.recall_k:.3f} "
                f"| {r.mrr:.3f} | {r.ndcg_k:.3f} |"
                for r in rows
            ]
            return out

        lines = [
            f"Retrieval on {self.dataset}: {self.rows[0].queries} queries, "
            f"{self.corpus_size} products ({self.date}, {self.seconds:.0f} s)",
            "",
            *table(self.rows),
        ]
        if self.split_rows:
            lines += [
                "",
                f"Held-out half ({self.split_rows[0].queries} queries); the last row's "
                "fusion and weights were chosen by MRR on the other half",
                "",
                *table(self.split_rows),
            ]
        return "\n".join(lines)


def _import_corpus(factory: Callable[..., object], docs: Sequence[CorpusDoc]) -> dict[int, str]:
    """Import ``docs`` with the store's importer; returns ``{product id: corpus id}``."""
    records = [
        ProductRecord(
            sku=f"eval-{d.id}",
            title=d.title or d.id,
            category=EVAL_CATEGORY,
            price=d.price if d.price is not None else 0.0,
            description=d.description,
            brand=d.brand,
            stock=1,
            source="retrieval-eval",
        )
        for d in docs
    ]
    ids: dict[int, str] = {}
    for start in range(0, len(records), 1000):
        with session_scope(factory) as session:  # type: ignore[arg-type]
            counts = upsert_products(session, records[start : start + 1000])
            ids.update({pid: sku.removeprefix("eval-") for sku, pid in counts.ids.items()})
    return ids


def _split(queries: Sequence[str], seed: int) -> tuple[list[str], list[str]]:
    """A seeded half/half split of the query ids: (tune, test)."""
    order = sorted(queries)
    random.Random(seed).shuffle(order)
    half = len(order) // 2
    return order[:half], order[half:]


def run_retrieval_eval(
    dataset: RetrievalDataset,
    embedder: Embedder,
    k: int = 10,
    depth: int = 100,
    rrf_k: int = 60,
    seed: int = 13,
    progress: bool = False,
) -> RetrievalReport:
    """Import the corpus into a temporary store, index it both ways, rank every query with
    each ranker (``depth`` candidates) and score lexical, dense and hybrid (plain RRF with
    ``rrf_k``) on all queries; then tune the RRF weights on a seeded half of the queries and
    report the modes and the tuned hybrid on the other half.

    Hybrid rows: RRF with equal weights and ``rrf_k``; convex (min-max normalised scores,
    equal weights); tuned (fusion, lexical weight and RRF k picked by MRR on the tune half).
    """
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tailor-eval-") as tmp:
        factory = make_session_factory(f"sqlite:///{Path(tmp) / 'eval.db'}")
        to_corpus = _import_corpus(factory, dataset.corpus)
        dense = ProductSearch(embedder)
        dense.build(factory, progress=progress)
        with factory() as session:
            texts = [(p.id, product_text(p)) for p in session.query(Product).order_by(Product.id)]
        lexical = LexicalIndex(texts)
        factory.kw["bind"].dispose()

    qids = list(dataset.queries)
    # as a shopper's query is embedded (a split backend embeds the catalog differently)
    vectors = embedder.encode_queries([dataset.queries[q] for q in qids])
    dense_hits: dict[str, list[Hit]] = {}
    lex_hits: dict[str, list[Hit]] = {}
    for q, vec in zip(qids, vectors, strict=True):
        dense_hits[q] = dense.search(vec, depth)
        lex_hits[q] = lexical.search(dataset.queries[q], depth)

    def as_corpus(hits: list[Hit]) -> list[str]:
        return [to_corpus[h.product_id] for h in hits]

    def fused(qs: Iterable[str], how: str, w_lex: float, kk: int = rrf_k) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for q in qs:
            pair = [dense_hits[q], lex_hits[q]]
            if how == "convex":
                out[q] = as_corpus(convex_fuse(pair, [1.0, w_lex]))
            else:
                ids = [[h.product_id for h in hits] for hits in pair]
                out[q] = as_corpus(rrf_fuse(ids, kk, [1.0, w_lex]))
        return out

    lex_rank = {q: as_corpus(v) for q, v in lex_hits.items()}
    dense_rank = {q: as_corpus(v) for q, v in dense_hits.items()}
    qrels = dataset.qrels

    def standard(qs: list[str]) -> list[EvalRow]:
        keep = set(qs)
        return [
            evaluate_rankings(
                "lexical (BM25)", {q: v for q, v in lex_rank.items() if q in keep}, qrels, k
            ),
            evaluate_rankings(
                "dense (MiniLM + FAISS)",
                {q: v for q, v in dense_rank.items() if q in keep},
                qrels,
                k,
            ),
            evaluate_rankings(f"hybrid (RRF k={rrf_k})", fused(qs, "rrf", 1.0), qrels, k),
            evaluate_rankings("hybrid (convex 1:1)", fused(qs, "convex", 1.0), qrels, k),
        ]

    rows = standard(qids)
    pr_curves = {
        "lexical (BM25)": curves(lex_rank, qrels),
        "dense (MiniLM + FAISS)": curves(dense_rank, qrels),
        f"hybrid (RRF k={rrf_k})": curves(fused(qids, "rrf", 1.0), qrels),
        "hybrid (convex 1:1)": curves(fused(qids, "convex", 1.0), qrels),
    }
    tune, test = _split(qids, seed)
    split_rows: list[EvalRow] = []
    tuned: dict[str, float | str] = {}
    if tune and test:
        # candidates: (fusion, lexical weight, rrf k); dense weight is fixed at 1
        grid = [("convex", w, 0) for w in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)]
        grid += [("rrf", w, kk) for w in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0) for kk in (1, 5, 20, 60)]
        scored = [
            (evaluate_rankings("", fused(tune, how, w, kk), qrels, k).mrr, how, w, kk)
            for how, w, kk in grid
        ]
        _, how, w_l, kk = max(scored, key=lambda item: item[0])  # first best on ties
        tuned = {"fusion": how, "lexical": w_l, "rrf_k": float(kk)}
        label = f"convex, lexical×{w_l:g}" if how == "convex" else f"RRF k={kk}, lexical×{w_l:g}"
        split_rows = [
            *standard(test),
            evaluate_rankings(f"hybrid (tuned: {label})", fused(test, how, w_l, kk), qrels, k),
        ]
    return RetrievalReport(
        dataset=dataset.name,
        k=k,
        corpus_size=len(dataset.corpus),
        rows=rows,
        split_rows=split_rows,
        tuned=tuned,
        seconds=time.perf_counter() - start,
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
        curves=pr_curves,
    )
