"""Predictive scores end to end on a generated demo: the time-split evaluation beats its
baselines, fitted scores are stored and served per customer, the profile (and with it the
assist panel's customer box) shows them, and the `tailor predict` command works."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tailor.cli import main
from tailor.demo import REFERENCE_DATE, load_demo
from tailor.profiles import predict
from tailor.profiles.summary import profile_summary
from tailor.store import make_session_factory
from tailor.store.models import Customer, Product, Profile
from tailor.store.scores import score_rows, scores_of

NOW = REFERENCE_DATE


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('predict') / 'demo.db'}"
    load_demo(make_session_factory(url), 1500, 300, seed=5, progress=False)
    return url


def test_time_split_beats_the_baselines(demo_url: str) -> None:
    factory = make_session_factory(demo_url)
    with factory() as s:
        cutoff = predict.default_cutoff(s)
        report = predict.evaluate(s, cutoff, 90)
    assert cutoff < NOW - timedelta(days=89)
    model, base = report.churn.values()
    assert report.customers > 150 and 0 < report.churned < report.customers
    assert model["auc"] is not None and base["auc"] is not None
    assert float(model["auc"]) > 0.78
    assert float(model["auc"]) >= float(base["auc"]) + 0.01
    assert float(model["recall"] or 0) > float(base["recall"] or 0)
    assert "Food & Drink > Coffee" in report.categories
    assert 14 < report.categories["Food & Drink > Coffee"] < 30
    own, pop = report.restock.values()
    assert report.restock_positives > 10
    assert float(own["recall"] or 0) >= float(pop["recall"] or 0)
    assert float(own["precision"] or 0) >= float(pop["precision"] or 0)
    assert float(own["mae_days"] or 99) < float(pop["mae_days"] or 0)
    text = report.markdown()
    assert "| logistic regression (risk >= 0.5) |" in text and "date MAE" in text
    with factory() as s, pytest.raises(ValueError, match="after the last purchase"):
        predict.evaluate(s, NOW - timedelta(days=30), 90)


def test_fit_store_and_serve_scores(demo_url: str) -> None:
    factory = make_session_factory(demo_url)
    with factory() as s:
        assert predict.churn_risk(s, 1, NOW) is None  # nothing fitted yet
        assert predict.outlook(s, 1, NOW) is None
    with factory.begin() as s:
        report = predict.fit_scores(s, NOW, progress=False)
    assert report.scored > 150 and report.training_rows > report.scored
    assert "Food & Drink > Coffee" in report.restock_categories
    assert "churn model v1" in report.render()
    with factory.begin() as s:
        rows = score_rows(s, predict.CHURN_KIND)
        assert len(rows) == report.scored
        top = rows[0]
        # the stored score is what churn_risk computes now
        assert predict.churn_risk(s, top.customer_id, NOW) == pytest.approx(top.value)
        assert top.payload["band"] == predict.risk_band(top.value)
        assert top.payload["features"]["recency_days"] > 60  # the riskiest lapsed long ago
        soon = score_rows(s, predict.RESTOCK_KIND, max_value=7, descending=False)
        assert soon, "some demo customers are due to restock"
        cid = soon[-1].customer_id
        dues = predict.restock_due(s, cid, NOW, horizon_days=7)
        assert dues and all(d.due_at <= NOW + timedelta(days=7) for d in dues)
        for d in dues:
            product = s.get(Product, d.product_id)
            assert product is not None and product.category == d.category and product.stock > 0
            assert "probably running low" in d.reason or " for the " in d.reason
        customer = s.get(Customer, cid)
        assert customer is not None
        # the profile the assist panel shows carries the same prediction
        summary = profile_summary(s, customer.external_id, NOW)
        assert summary is not None and summary.predictions is not None
        shown = summary.to_json()["predictions"]
        json.dumps(shown)  # JSON-safe for the panel's API
        assert [d["category"] for d in shown["restock"]] == [d.category for d in dues]
        assert shown["churn_risk"] == pytest.approx(predict.churn_risk(s, cid, NOW), abs=1e-3)
        assert "predicted    :" in summary.render()
        # a customer who opts out is neither scored nor predicted
        s.add(Profile(customer_id=cid, personalisation=False))
        s.flush()
        assert predict.churn_risk(s, cid, NOW) is None
        assert predict.restock_due(s, cid, NOW) == []
        assert predict.outlook(s, cid, NOW) is None
    with factory.begin() as s:
        predict.fit_scores(s, NOW, progress=False)
        assert scores_of(s, cid) == {}
        assert len(score_rows(s, predict.CHURN_KIND)) == report.scored - 1
        versions = {r.model_version for r in score_rows(s, predict.CHURN_KIND)}
        assert versions == {2}


def test_restock_due_without_a_fitted_model_learns_on_the_fly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    load_demo(make_session_factory(url), 1500, 300, seed=5, progress=False)
    factory = make_session_factory(url)
    with factory() as s:
        purchases = predict.load_purchases(s, before=NOW)
        model = predict.fit_restock_model(purchases, NOW)
        buyers = sorted({p.customer_id for p in purchases if p.category in model.categories})
        assert len(buyers) > 10
        found = 0
        for cid in buyers[:12]:
            got = predict.restock_due(s, cid, NOW, horizon_days=30)
            mine = [p for p in purchases if p.customer_id == cid]
            want = [
                d
                for d in predict.predict_restock(model, mine, NOW)
                if d.due_at <= NOW + timedelta(days=30)
            ]
            assert [(d.category, d.due_at) for d in got] == [(d.category, d.due_at) for d in want]
            found += bool(got)
        assert found >= 2
        with pytest.raises(ValueError, match="horizon_days"):
            predict.restock_due(s, buyers[0], NOW, horizon_days=0)


def test_predict_command(demo_url: str, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "predictive.md"
    assert main(["--database-url", demo_url, "predict", "evaluate", "--out", str(out)]) == 0
    doc = out.read_text(encoding="utf-8")
    assert doc.startswith("# Predictive scores") and "| recency only (> 90 days) |" in doc
    assert main(["--database-url", demo_url, "predict", "fit"]) == 0
    assert "restock model" in capsys.readouterr().out
    assert main(["--database-url", demo_url, "predict", "show", "cust-0002"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == {"churn_risk", "churn_band", "churn_horizon_days", "at_risk", "restock"}
    assert main(["--database-url", demo_url, "predict", "show", "nobody"]) == 2
    assert "no customer" in capsys.readouterr().err
    bad = ["--database-url", demo_url, "predict", "evaluate", "--cutoff", "not-a-date"]
    assert main(bad) == 2
