"""Experiments on the real service: a small demo catalog in SQLite, real MiniLM + FAISS,
real segments; the real action records the arm; arms rank differently; simulate + report
end to end through the CLI."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.actions import ActionRecommend
from tailor.cli import main
from tailor.experiments import Assignment, Experiment, arm_for, parse_experiments, unit_key
from tailor.experiments.simulate import sender_prefix, simulate
from tailor.nlu.vocab import Vocabulary
from tailor.profiles.identity import sign_customer_token
from tailor.profiles.observer import Observer
from tailor.profiles.segments import fit_all_segments
from tailor.recommend.criteria import CRITERIA_SLOTS, Criteria
from tailor.recommend.service import Recommender
from tailor.retrieval import ProductSearch
from tailor.runtime.after_reply import AFTER_REPLY
from tailor.store import make_session_factory
from tailor.store.models import Customer, Event

pytestmark = pytest.mark.slow

SECRET = "test-secret-0123456789abcdef"
NOW = datetime.now(UTC).replace(microsecond=0)
START = (NOW - timedelta(days=20)).strftime("%Y-%m-%dT00:00:00Z")
END = (NOW + timedelta(days=20)).strftime("%Y-%m-%dT00:00:00Z")
TOML = f"""
[[experiment]]
name = "test-personalisation"
start = {START}
end = {END}
control = "blend"

[[experiment.arm]]
name = "blend"
traffic = 1

[[experiment.arm]]
name = "segment_only"
traffic = 1
[experiment.arm.weights]
affinity = 0.0
session = 0.0
owned = 0.0
segment = 0.25

[[experiment.arm]]
name = "personal"
traffic = 1
[experiment.arm.weights]
segment = 0.0
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("experiments")


@pytest.fixture(scope="module")
def experiment() -> Experiment:
    return parse_experiments(TOML)[0]


@pytest.fixture(scope="module")
def rec(home: Path, embedder: Any, experiment: Experiment) -> Recommender:
    from tailor.demo import load_demo

    factory = make_session_factory(f"sqlite:///{home / 'tailor.db'}")
    load_demo(factory, 600, 60, 42, progress=False)
    fit_all_segments(factory)
    search = ProductSearch.open(home / "index", factory, embedder, backend="flat")
    with factory() as session:
        vocab = Vocabulary.from_session(session)
    return Recommender(search, factory, vocab, k=4, experiments=[experiment])


def _tracker(text: str, sender: str, metadata: dict[str, Any]) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": "ask_recommendation", "confidence": 0.99},
        "entities": [],
        "metadata": metadata,
    }
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": {name: None for name in (*CRITERIA_SLOTS, "shown", "seen")},
            "latest_message": latest,
            "events": [
                {
                    "event": "user",
                    "text": text,
                    "parse_data": latest,
                    "input_channel": "rest",
                    "metadata": metadata,
                }
            ],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def _shown(rec: Recommender, sender: str) -> list[Event]:
    with rec.session_factory() as s:
        return list(
            s.scalars(select(Event).where(Event.sender_id == sender, Event.kind == "shown"))
        )


async def test_shown_events_carry_the_arm(rec: Recommender, experiment: Experiment) -> None:
    with rec.session_factory() as s:
        customer = s.scalars(select(Customer).order_by(Customer.id)).first()
        assert customer is not None
    token = sign_customer_token(customer.external_id, SECRET, ttl_seconds=600)
    cases = [
        (f"exp-known-{time.monotonic_ns()}", {"customer_token": token}, customer.external_id),
        (f"exp-anon-{time.monotonic_ns()}", {}, None),
    ]
    for sender, meta, external in cases:
        action = ActionRecommend(rec, Observer(rec.session_factory, SECRET))
        await action.run(CollectingDispatcher(), _tracker("I need a jacket", sender, meta), {})
        await AFTER_REPLY.drain()  # the shown event is written after the reply
        rows = _shown(rec, sender)
        assert rows, "the request showed products"
        key = unit_key(external, sender)
        assert key is not None
        expected = {"name": experiment.name, "arm": arm_for(experiment, key).name}
        assert all(r.payload["experiment"] == expected for r in rows)
        assert all(r.customer_id == (customer.id if external else None) for r in rows)


def test_arms_rank_differently(rec: Recommender, experiment: Experiment) -> None:
    with rec.session_factory() as s:
        ids = list(s.scalars(select(Customer.id).order_by(Customer.id).limit(12)))
    differ = 0
    for cid in ids:
        shopper = rec.shopper(None, cid)
        assert shopper.experiment is not None
        lists: dict[str, list[int]] = {}
        for arm in experiment.arms:
            shopper.experiment = Assignment(experiment.name, arm.name, dict(arm.weights))
            weights = rec.weights_for(shopper)
            for name, value in arm.weights.items():
                assert getattr(weights, name) == value
            result = rec.recommend(Criteria(query="jacket"), shopper=shopper)
            lists[arm.name] = [s.product_id for s in result.suggestions]
            if arm.name == "segment_only":
                assert all(not s.signals.get("affinity") for s in result.suggestions)
        differ += lists["segment_only"] != lists["personal"]
    assert differ >= 3, "switching off one-to-one signals changes some shoppers' lists"


def _sim_events(rec: Recommender, prefix: str) -> list[tuple[Any, ...]]:
    with rec.session_factory() as s:
        rows = s.scalars(select(Event).where(Event.sender_id.startswith(prefix)).order_by(Event.id))
        return [
            (e.kind, e.sender_id, e.product_id, e.created_at, e.value, e.payload.get("experiment"))
            for e in rows
        ]


def test_simulate_then_report(
    rec: Recommender,
    experiment: Experiment,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    summary = simulate(rec, experiment, customers=30, days=4, seed=7)
    assert summary.visits > 30 and summary.lists >= summary.visits
    prefix = sender_prefix(experiment.name, 7)
    events = _sim_events(rec, prefix)
    shown = [e for e in events if e[0] == "shown"]
    assert len(shown) == sum(c["shown"] for c in summary.by_arm.values())
    with rec.session_factory() as s:
        external = dict(s.execute(select(Customer.id, Customer.external_id)).all())
        customer_of = {
            e.id: e.customer_id
            for e in s.scalars(select(Event).where(Event.sender_id.startswith(prefix)))
        }
    assert all(c is not None for c in customer_of.values())
    for _kind, sender, *_rest, exp in shown:
        ext = sender.removeprefix(prefix).rsplit(":", 1)[0]
        assert ext in external.values()
        assert exp == {"name": experiment.name, "arm": arm_for(experiment, f"customer:{ext}").name}
    assert {"click", "cart", "purchase", "message"} <= {e[0] for e in events}
    # deterministic: a second run with the seed replaces the first with the same events
    again = simulate(rec, experiment, customers=30, days=4, seed=7)
    assert again.replaced_events == len(events)
    assert [e[:5] for e in _sim_events(rec, prefix)] == [e[:5] for e in events]

    toml = tmp_path / "experiments.toml"
    toml.write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("TAILOR_EXPERIMENTS_FILE", str(toml))
    monkeypatch.setenv("TAILOR_DATABASE_URL", f"sqlite:///{home / 'tailor.db'}")
    out = tmp_path / "report"
    assert main(["experiments", "report", experiment.name, "--out", str(out)]) == 0
    text = (out / f"{experiment.name}.md").read_text(encoding="utf-8")
    assert (out / f"{experiment.name}.png").stat().st_size > 5000
    rows = [line for line in text.splitlines() if line.startswith("| ") and " · " not in line]
    impressions = 0
    for arm in ("blend", "segment_only", "personal"):
        row = next(line for line in rows if line.startswith(f"| {arm} | "))
        impressions += int(row.split("|")[3])
    # the action test above showed lists too, in this database and experiment
    with rec.session_factory() as s:
        all_shown = s.scalars(select(Event).where(Event.kind == "shown")).all()
    assert impressions == sum(1 for e in all_shown if (e.payload or {}).get("experiment"))
    assert main(["experiments", "report", "nope"]) == 2
