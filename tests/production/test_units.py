"""Pure parts of the production profile: settings, Rasa's endpoints, nginx's configuration,
the analytics event key and idempotent storage (SQLite in memory). No services needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, func, select

from tailor.analytics.events import (
    ConversationEvent,
    InvalidEvent,
    ParsedEvent,
    create_tables,
    drop_forgotten,
    event_key,
    parse_event,
    store_events,
)
from tailor.config import Settings
from tailor.runtime.production import endpoints_yaml, nginx_conf, production_settings


def prod(**kw: object) -> Settings:
    return Settings.load(env={}, **{"profile": "production", **kw})


def test_embedded_is_the_default_and_uses_sqlite() -> None:
    s = Settings.load(env={})
    assert s.profile == "embedded"
    assert s.database_url.startswith("sqlite:///")


def test_production_derives_database_from_postgres_url() -> None:
    s = prod(postgres_url="postgresql+psycopg://u:p@db:5432/shop")
    assert s.database_url == "postgresql+psycopg://u:p@db:5432/shop"
    given = prod(database_url="postgresql+psycopg://u@other/x")
    assert given.database_url == "postgresql+psycopg://u@other/x"


def test_profile_from_the_environment() -> None:
    s = Settings.load(env={"TAILOR_PROFILE": "production", "TAILOR_RASA_REPLICAS": "3"})
    assert s.profile == "production" and s.rasa_replicas == 3


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"profile": "prod"}, "TAILOR_PROFILE"),
        ({"postgres_url": "mysql://x/y"}, "TAILOR_POSTGRES_URL"),
        ({"postgres_url": "postgresql+psycopg://root@h:5432"}, "TAILOR_POSTGRES_URL"),
        ({"redis_url": "http://127.0.0.1:6379"}, "TAILOR_REDIS_URL"),
        ({"rabbitmq_url": "127.0.0.1:5672"}, "TAILOR_RABBITMQ_URL"),
        ({"rasa_replicas": 0}, "TAILOR_RASA_REPLICAS"),
        ({"events_queue": "bad queue!"}, "TAILOR_EVENTS_QUEUE"),
    ],
)
def test_bad_production_settings_name_the_setting(override: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        prod(**override)


def test_production_settings_route_rasa_and_actions_through_the_balancer() -> None:
    s = production_settings(Settings.load(env={}, balancer_port=9090))
    assert s.profile == "production"
    assert s.rasa_url == "http://127.0.0.1:9090"
    assert s.action_url == "http://127.0.0.1:9090/actions/webhook"
    explicit = production_settings(Settings.load(env={}, rasa_url="http://rasa.internal"))
    assert explicit.rasa_url == "http://rasa.internal"


def test_endpoints_yaml_names_every_production_store() -> None:
    s = production_settings(
        prod(
            postgres_url="postgresql+psycopg://tailor:s%40cret@db.local:5433/shop",
            redis_url="redis://:pw@cache.local:6380/2",
            rabbitmq_url="amqp://bunny:carrot@mq.local:5673/%2F",
            events_queue="shop_events",
            balancer_port=8081,
        )
    )
    doc = yaml.safe_load(endpoints_yaml(s, lock_prefix="shop"))
    assert doc["action_endpoint"] == {"url": "http://127.0.0.1:8081/actions/webhook"}
    assert doc["tracker_store"] == {
        "type": "tailor_tracker_store.CompactingSQLTrackerStore",
        "dialect": "postgresql",
        "url": "db.local",
        "port": 5433,
        "db": "shop_tracker",
        "max_session_events": 60,
        "username": "tailor",
        "password": "s@cret",
    }
    assert doc["lock_store"] == {
        "type": "tailor_lock_store.AtomicRedisLockStore",
        "url": "cache.local",
        "port": 6380,
        "db": 2,
        "key_prefix": "shop",
        "password": "pw",
    }
    broker = doc["event_broker"]
    assert broker["type"] == "pika" and broker["url"] == "amqp://mq.local/%2F"
    assert (broker["port"], broker["username"], broker["password"]) == (5673, "bunny", "carrot")
    assert broker["queues"] == ["shop_events"]
    assert broker["exchange_name"] == "shop_events.exchange"


def test_endpoints_yaml_rejects_a_lock_prefix_rasa_would_ignore() -> None:
    with pytest.raises(ValueError, match="alphanumeric"):
        endpoints_yaml(prod(), lock_prefix="a-b")


def test_nginx_conf_balances_both_upstreams(tmp_path: Path) -> None:
    conf = nginx_conf(
        host="127.0.0.1",
        listen_port=8080,
        rasa_ports=[5005, 5006],
        action_ports=[5055, 5056],
        run_dir=tmp_path / "run",
        log_dir=tmp_path / "logs",
    )
    rasa = conf[conf.index("upstream tailor_rasa") : conf.index("upstream tailor_actions")]
    assert "server 127.0.0.1:5005" in rasa and "server 127.0.0.1:5006" in rasa
    actions = conf[conf.index("upstream tailor_actions") : conf.index("upstream tailor_rasa_")]
    assert "server 127.0.0.1:5055" in actions and "server 127.0.0.1:5056" in actions
    assert "listen 127.0.0.1:8080;" in conf
    assert "proxy_pass http://tailor_actions/;" in conf
    # User messages are never replayed on another replica once sent; action calls may be.
    rasa_loc = conf[conf.index("location / {") :]
    assert "proxy_next_upstream error timeout;" in rasa_loc
    actions_loc = conf[conf.index("location /actions/") : conf.index("location / {")]
    assert "non_idempotent" in actions_loc
    sticky = conf[conf.index("upstream tailor_rasa_sticky") :]
    assert "hash $remote_addr consistent;" in sticky.split("}")[0]
    assert "proxy_pass http://tailor_rasa_sticky;" in conf
    assert conf.count("{") == conf.count("}")
    assert "user " not in conf.split("worker_processes")[0]
    # Bodies stay in memory: workers never write temporary files (they may not be allowed to).
    assert "client_body_buffer_size 8m;" in conf and "proxy_max_temp_file_size 0;" in conf


def test_nginx_conf_needs_servers(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        nginx_conf(
            host="127.0.0.1",
            listen_port=1,
            rasa_ports=[],
            action_ports=[1],
            run_dir=tmp_path,
            log_dir=tmp_path,
        )


def test_event_key_is_stable_and_discriminating() -> None:
    body = {"sender_id": "s", "event": "user", "timestamp": 1.25, "text": "hi", "x": [1, 2]}
    reordered = dict(reversed(list(body.items())))
    assert event_key(body) == event_key(reordered)
    assert event_key(body) == event_key(json.loads(json.dumps(body)))
    assert event_key(body) != event_key({**body, "sender_id": "t"})
    assert event_key(body) != event_key({**body, "timestamp": 1.26})
    assert event_key(body) != event_key({**body, "event": "bot"})
    assert event_key(body) != event_key({**body, "text": "hello"})
    assert len(event_key(body)) == 64


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"event": "user"}',
        b'{"sender_id": "s"}',
        b'{"sender_id": "s", "event": "user", "timestamp": "yesterday"}',
        b'{"sender_id": "", "event": "user"}',
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        parse_event(raw)


def test_store_events_is_idempotent() -> None:
    engine = create_engine("sqlite://")
    create_tables(engine)
    raw = [
        json.dumps({"sender_id": "s", "event": "user", "timestamp": 1.0, "text": "hi"}),
        json.dumps({"sender_id": "s", "event": "bot", "timestamp": 1.1, "text": "hello"}),
    ]
    events = [parse_event(r) for r in raw]
    first = store_events(engine, events)
    again = store_events(engine, [*events, *events])
    assert (first.inserted, first.duplicates) == (2, 0)
    assert (again.inserted, again.duplicates) == (0, 4)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(ConversationEvent)).scalar_one()
        texts = conn.execute(select(ConversationEvent.text).order_by(ConversationEvent.id))
        assert n == 2
        assert [t for (t,) in texts] == ["hi", "hello"]


def _brute_drop(events: list[ParsedEvent], stones: dict[str, float]) -> list[ParsedEvent]:
    """Per sender: everything from its first session_started after the tombstone on."""
    out = []
    for i, e in enumerate(events):
        at = stones.get(e.sender_id)
        if at is None:
            out.append(e)
            continue
        opened = [
            j
            for j, f in enumerate(events[: i + 1])
            if f.sender_id == e.sender_id
            and f.event_type == "session_started"
            and (f.timestamp or 0) > at
        ]
        if opened:
            out.append(e)
    return out


@pytest.mark.parametrize("seed", range(20))
def test_drop_forgotten_matches_a_brute_force_reading(seed: int) -> None:
    import random

    rng = random.Random(seed)
    kinds = ["user", "bot", "action", "session_started", "slot"]
    events = [
        parse_event(
            json.dumps(
                {
                    "sender_id": rng.choice("abc"),
                    "event": rng.choice(kinds),
                    "timestamp": float(rng.randint(0, 20)),
                    "n": n,
                }
            )
        )
        for n in range(rng.randint(0, 30))
    ]
    stones = {s: float(rng.randint(0, 20)) for s in "ab" if rng.random() < 0.7}
    kept, lifted = drop_forgotten(events, stones)
    assert kept == _brute_drop(events, stones)
    assert lifted == {
        e.sender_id
        for e in events
        if e.sender_id in stones
        and e.event_type == "session_started"
        and (e.timestamp or 0) > stones[e.sender_id]
    }
