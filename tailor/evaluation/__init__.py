"""Offline evaluations. ``tailor.evaluation.retrieval``: lexical, dense and hybrid search
scored with Recall@k, MRR and NDCG@k on a labelled dataset (see ``docs/retrieval-eval.md``)."""

from __future__ import annotations

from tailor.evaluation.retrieval import (
    DATASET_FORMATS,
    RetrievalDataset,
    RetrievalReport,
    load_dataset,
    mrr,
    ndcg_at_k,
    recall_at_k,
    run_retrieval_eval,
)

__all__ = [
    "DATASET_FORMATS",
    "RetrievalDataset",
    "RetrievalReport",
    "load_dataset",
    "mrr",
    "ndcg_at_k",
    "recall_at_k",
    "run_retrieval_eval",
]
