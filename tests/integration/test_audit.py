"""``tailor audit`` end to end on a small real shop: the real recommender (embedding model,
FAISS, BM25), real SQLite, the demo generator's customers.

An injected disparity: a panel of women (not audited) who bought only the dearest products of
the audited product types, so the gender segment prior is skewed towards expensive brands.
With gender configured as a ranking input (and a strong segment weight) the audit must flag
gender; with the default policy, on the same data and weights, it must not.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tailor.evaluation.audit import AuditReport, audit_queries, render_markdown, run_audit
from tailor.nlu.vocab import Vocabulary
from tailor.recommend.personal import PricePositions, RankingWeights
from tailor.recommend.service import Recommender
from tailor.recommend.signals import ProtectedPolicy
from tailor.retrieval import ProductSearch
from tailor.store import make_session_factory
from tailor.store.models import Customer, Event, Product

pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
DEPARTMENTS = 5
GENDER_ONLY = frozenset({"gender"})


def inject_premium_panel(factory: sessionmaker[Session], leaves: list[str], n: int = 40) -> None:
    """``n`` women who each bought the dearest fifth of the audited product types."""
    with factory.begin() as s:
        products = list(s.scalars(select(Product).where(Product.category.in_(leaves))))
        by_leaf: dict[str, list[float]] = {}
        for p in products:
            by_leaf.setdefault(p.category, []).append(float(p.price))
        positions = PricePositions(by_leaf)
        dear = sorted(
            p.id for p in products if (positions.position(p.category, p.price) or 0) >= 0.8
        )
        assert len(dear) >= 10
        for i in range(n):
            c = Customer(external_id=f"panel-{i}", name=f"Panel {i}", gender="female")
            s.add(c)
            s.flush()
            for j in range(8):
                s.add(
                    Event(
                        kind="purchase",
                        customer_id=c.id,
                        product_id=dear[(i * 8 + j) % len(dear)],
                        value=1.0,
                        created_at=NOW - timedelta(days=20 + j),
                    )
                )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> tuple[Recommender, list[int]]:
    from tailor.demo import load_demo
    from tailor.evaluation.audit import _leaf_counts
    from tailor.profiles.segments import fit_all_segments

    home: Path = tmp_path_factory.mktemp("audit")
    factory = make_session_factory(f"sqlite:///{home / 'tailor.db'}")
    load_demo(factory, 900, 160, 42, progress=False)
    leaves = [q.criteria.category for q in audit_queries(_leaf_counts(factory), DEPARTMENTS)]
    inject_premium_panel(factory, [leaf for leaf in leaves if leaf])
    fit_all_segments(factory)
    search = ProductSearch.open(home / "index", factory, embedder, backend="flat")
    with factory() as s:
        vocab = Vocabulary.from_session(s)
        audited = list(s.scalars(select(Customer.id).where(Customer.external_id.like("cust-%"))))
    rec = Recommender(search, factory, vocab, k=5, weights=RankingWeights(segment=1.0))
    return rec, [int(c) for c in audited]


def audit(rec: Recommender, customers: list[int], policies: list[ProtectedPolicy]) -> AuditReport:
    return run_audit(
        rec, policies, customers=customers, departments=DEPARTMENTS, n_boot=300, seed=7
    )


def gender_flags(report: AuditReport, run: int) -> list[str]:
    return [f"{d.group}: {d.metric}" for d in report.runs[run].flags if d.dimension == "gender"]


def test_gender_in_the_ranking_is_flagged_and_the_default_is_not(
    shop: tuple[Recommender, list[int]],
) -> None:
    rec, customers = shop
    before = rec.signals
    report = audit(
        rec,
        customers,
        [ProtectedPolicy(GENDER_ONLY), ProtectedPolicy(GENDER_ONLY, use_in_ranking=True)],
    )
    assert rec.signals is before  # the recommender is handed back as it was
    default, configured = report.runs
    assert default.customers == configured.customers == len(customers)
    assert default.suggestions > 5 * len(customers)
    assert default.quality_cases > 20
    assert not gender_flags(report, 0), gender_flags(report, 0)
    flagged = gender_flags(report, 1)
    assert flagged, "gender in the ranking with a skewed prior must be flagged"
    women = {(r.dimension, r.group): r for r in configured.rows}[("gender", "female")]
    men = {(r.dimension, r.group): r for r in configured.rows}[("gender", "male")]
    assert women.mean_position is not None and men.mean_position is not None
    assert women.mean_position > men.mean_position  # the injected direction
    # Using gender moved what women are shown towards the panel's dearer products.
    d_women = {(r.dimension, r.group): r for r in default.rows}[("gender", "female")]
    assert d_women.mean_position is not None
    assert women.mean_position > d_women.mean_position
    print("flags with gender in the ranking:", flagged)

    text = render_markdown(report)
    assert "## What using protected attributes changes" in text
    assert "**FLAG**" in text
    data = json.loads(json.dumps(report.to_json()))
    assert data["flagged"] is report.flagged
    assert data["runs"][1]["flags"] == len(configured.flags)


def test_cli_writes_the_report_and_exits_by_its_flags(tmp_path: Path) -> None:
    from tailor.cli import main

    assert main(["--home", str(tmp_path / "empty"), "audit", "--out", str(tmp_path / "a.md")]) == 2
    assert not (tmp_path / "a.md").exists()
