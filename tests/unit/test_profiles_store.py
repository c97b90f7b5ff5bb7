"""Profiles: anonymous → customer adoption, consent, preferences, channel links (SQLite)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, select, text

from tailor.store import make_engine, make_session_factory
from tailor.store.db import add_missing_columns
from tailor.store.events import record_events
from tailor.store.models import Customer, Event, Profile
from tailor.store.profiles import (
    add_preferences,
    customer_by_external_id,
    customer_for_channel_user,
    link_channel_user,
    link_sender,
    merge_preferences,
    profile_for,
    set_personalisation,
)


def _factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    factory = make_session_factory(f"sqlite:///{tmp_path / 't.db'}")
    with factory.begin() as s:
        s.add_all(
            [
                Customer(external_id="cust-0001", name="Emma Smith"),
                Customer(external_id="cust-0002", name="Noah Jones"),
            ]
        )
    return factory


def test_anonymous_profile_is_adopted_when_the_visitor_identifies(tmp_path: Path) -> None:
    factory = _factory(tmp_path)
    with factory.begin() as s:
        anon = profile_for(s, "visitor-1", None)
        assert anon is not None and anon.customer_id is None
        add_preferences(s, anon, [{"kind": "value", "value": "sustainability", "positive": True}])
        set_personalisation(s, anon, False)
        record_events(s, "message", "visitor-1", [], {"text": "hi"})
        record_events(s, "message", "visitor-2", [], {"text": "someone else"})
    with factory.begin() as s:
        emma = customer_by_external_id(s, "cust-0001")
        assert emma is not None
        own = profile_for(s, "other-conversation", emma.id)
        assert own is not None
        add_preferences(s, own, [{"kind": "style", "value": "minimal", "positive": True}])
        assert link_sender(s, "visitor-1", emma.id)
    with factory() as s:
        profiles = list(s.scalars(select(Profile)))
        assert len(profiles) == 1  # the anonymous one was merged and removed
        prof = profiles[0]
        assert prof.customer_id == emma.id
        assert {p["value"] for p in prof.preferences} == {"minimal", "sustainability"}
        assert prof.personalisation is False  # an opt-out survives the merge
        owners = dict(s.execute(select(Event.sender_id, Event.customer_id)).all())
        assert owners == {"visitor-1": emma.id, "visitor-2": None}
    # Nothing to adopt the second time.
    with factory.begin() as s:
        assert not link_sender(s, "visitor-1", emma.id)


def test_merge_preferences_later_statement_wins() -> None:
    merged = merge_preferences(
        [{"kind": "style", "value": "bold", "positive": True}],
        [
            {"kind": "style", "value": "bold", "positive": False},
            {"kind": "value", "value": "quality", "positive": True},
        ],
    )
    assert merged == [
        {"kind": "style", "value": "bold", "positive": False},
        {"kind": "value", "value": "quality", "positive": True},
    ]


def test_channel_links(tmp_path: Path) -> None:
    factory = _factory(tmp_path)
    with factory.begin() as s:
        noah = customer_by_external_id(s, "cust-0002")
        assert noah is not None
        link_channel_user(s, "telegram", "123456", noah.id)
    with factory() as s:
        linked = customer_for_channel_user(s, "telegram", "123456")
        assert linked is not None and linked.external_id == "cust-0002"
        assert customer_for_channel_user(s, "telegram", "999") is None
        assert customer_for_channel_user(s, "facebook", "123456") is None


def test_old_database_gains_new_nullable_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE reviews (id INTEGER PRIMARY KEY, product_id INTEGER, "
                "rating INTEGER, text TEXT, author VARCHAR(128), created_at DATETIME)"
            )
        )
        conn.execute(text("INSERT INTO reviews (product_id, rating, text) VALUES (1, 5, 'ok')"))
    make_session_factory(engine)  # creates missing tables, adds missing columns
    cols = {c["name"] for c in inspect(engine).get_columns("reviews")}
    assert {"sentiment_label", "sentiment_score"} <= cols
    with engine.connect() as conn:
        assert conn.execute(text("SELECT text, sentiment_label FROM reviews")).one() == ("ok", None)
    assert add_missing_columns(engine) == []  # idempotent


def test_profile_summary_and_cli(tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from tailor.cli import main
    from tailor.profiles.summary import profile_summary

    factory = _factory(tmp_path)
    with factory.begin() as s:
        emma = customer_by_external_id(s, "cust-0001")
        assert emma is not None
        emma.age_band, emma.country, emma.region = "25-34", "Sweden", "Stockholm"
        emma.attributes = {"climate": "cold"}
        record_events(s, "purchase", "demo:x", [], customer_id=emma.id, value=40.0)
        record_events(s, "purchase", "demo:x", [], customer_id=emma.id, value=2.5)
        record_events(s, "message", "chat-1", [], {"text": "hi"}, customer_id=emma.id)
        prof = profile_for(s, "chat-1", emma.id)
        assert prof is not None
        add_preferences(
            s, prof, [{"kind": "style", "value": "minimal", "positive": True, "evidence": "x"}]
        )
    with factory() as s:
        summary = profile_summary(s, "cust-0001")
        assert profile_summary(s, "nobody") is None
    assert summary is not None
    assert summary.behaviour["purchase"] == 2 and summary.behaviour["message"] == 1
    assert summary.spent == 42.5 and summary.climate == "cold"
    text_out = summary.render()
    assert "young professionals" in text_out and "cold climate · Europe" in text_out
    assert "minimal" in text_out

    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{tmp_path / 't.db'}")
    assert main(["profile", "show", "cust-0001"]) == 0
    assert "Emma Smith (cust-0001)" in capsys.readouterr().out
    assert main(["profile", "link", "cust-0002", "--channel", "telegram", "--user-id", "77"]) == 0
    with factory() as s:
        linked = customer_for_channel_user(s, "telegram", "77")
        assert linked is not None and linked.external_id == "cust-0002"
    assert main(["profile", "show", "cust-9999"]) != 0
    assert main(["profile", "link", "cust-0002", "--channel", "fax", "--user-id", "1"]) != 0
    assert "unknown channel" in capsys.readouterr().err


def test_no_segment_is_assigned_to_a_customer_who_opted_out(tmp_path: Path) -> None:
    from tailor.store.models import CustomerSegment
    from tailor.store.segments import set_segments

    factory = make_session_factory(f"sqlite:///{tmp_path / 's.db'}")
    with factory.begin() as s:
        a, b = Customer(external_id="a-1", name="A"), Customer(external_id="b-1", name="B")
        s.add_all([a, b])
        s.flush()
        set_segments(s, "demographic", None, {a.id: "young", b.id: "young"})
        prof = profile_for(s, "sender-b1", b.id)
        assert prof is not None
        set_personalisation(s, prof, False)
        s.flush()
        set_segments(s, "demographic", None, {a.id: "older", b.id: "older"})
        set_segments(s, "geographic", None, {b.id: "north"})
        rows = s.execute(select(CustomerSegment.customer_id, CustomerSegment.kind)).all()
        assert sorted((cid == a.id, kind) for cid, kind in rows) == [(True, "demographic")]
