"""Behavioural triggers: an abandoned cart, a consumable due for restock, a customer about to
leave — each brought back with a tailored suggestion, in the shopper's next conversation or
as an outbound message where they opted in. Rules come from ``triggers.toml``
(:mod:`tailor.marketing.rules`); every firing obeys the rule's channels, frequency cap,
cooldowns, quiet hours and the shopper's consent, and is logged (a ``trigger`` event plus
``shown`` events tagged with the rule), so :func:`trigger_performance` measures it like any
suggestion.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tailor.config import Settings
from tailor.marketing.outbound import OutboundError, Sender
from tailor.marketing.rules import (
    CHAT,
    TriggerConfig,
    TriggerRule,
    cap_allows,
    in_quiet_hours,
    load_trigger_config,
)
from tailor.recommend.criteria import Criteria
from tailor.recommend.personal import ShopperContext
from tailor.recommend.render import Reply, quick
from tailor.recommend.service import Recommender, Suggestion
from tailor.store.marketing import (
    allows_personalisation,
    last_rule_firing,
    marketing_channels,
    record_trigger,
    sender_filter,
    trigger_events,
)
from tailor.store.models import Customer, Event, Product, as_utc

log = logging.getLogger(__name__)

__all__ = [
    "Activity",
    "Firing",
    "Offer",
    "RulePerformance",
    "Subject",
    "TriggerEngine",
    "abandoned_items",
    "format_performance",
    "get_default_engine",
    "offer_replies",
    "trigger_performance",
]

#: Event kinds that are the shopper doing something (not the bot showing or sending).
SHOPPER_KINDS: frozenset[str] = frozenset(
    {"message", "click", "view", "details", "compare", "feedback", "cart", "purchase", "handoff"}
)
#: Rule types built on the predictive scores (tailor.profiles.predict).
PREDICTIVE: frozenset[str] = frozenset({"restock_due", "retention"})
#: Rule types that can apply to an anonymous shopper (a cart is kept by sender id too).
ANONYMOUS_SUBJECTS: frozenset[str] = frozenset({"abandoned_cart"})
#: The sender :meth:`TriggerEngine.warm_up` checks for (no shopper has it).
WARM_UP_SENDER = "tailor-warmup"
#: Outcomes measured after a trigger, in funnel order.
OUTCOMES: tuple[str, ...] = ("click", "cart", "purchase")


# -- detection (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    """One event of a recipient, as the detectors read it."""

    kind: str
    product_id: int | None
    at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Subject:
    """What a rule fires about: the product (if any) and the words for its message."""

    product_id: int | None
    values: Mapping[str, Any]
    since: datetime | None = None


def abandoned_items(
    events: Iterable[Activity],
    now: datetime,
    wait: timedelta,
    idle: timedelta,
    lookback: timedelta,
) -> list[tuple[int, datetime]]:
    """Products put in the cart and abandoned, most recent first: carted within ``lookback``
    and at least ``wait`` ago, not bought since, not reminded of since, and the shopper left
    afterwards (a gap of at least ``idle`` with no activity of theirs after the cart).

    ``events`` are the recipient's events (any order), ``trigger`` ones included (a trigger
    whose payload ``subject`` is the product counts as a reminder).
    """
    evs = sorted(events, key=lambda e: e.at)
    last_cart: dict[int, datetime] = {}
    for e in evs:
        if e.kind == "cart" and e.product_id is not None:
            last_cart[e.product_id] = e.at
    out: list[tuple[int, datetime]] = []
    activity = [e.at for e in evs if e.kind in SHOPPER_KINDS and e.at <= now]
    for pid, at in last_cart.items():
        if at < now - lookback or now - at < wait:
            continue
        bought = any(e.kind == "purchase" and e.product_id == pid and e.at >= at for e in evs)
        reminded = any(
            e.kind == "trigger" and e.payload.get("subject") == pid and e.at >= at for e in evs
        )
        if bought or reminded:
            continue
        times = [t for t in activity if t >= at] + [now]
        if any(b - a >= idle for a, b in itertools.pairwise(times)):
            out.append((pid, at))
    out.sort(key=lambda x: x[1], reverse=True)
    return out


# -- offers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A fired trigger's content: the text and the product cards (subject first)."""

    rule: str
    text: str
    cards: list[dict[str, Any]]
    subject_id: int | None = None

    @property
    def product_ids(self) -> list[int]:
        """The products shown, in order."""
        return [int(c["id"]) for c in self.cards]

    def payload(self) -> dict[str, Any] | None:
        """The channel-neutral ``product_cards`` payload (None without cards)."""
        if not self.cards:
            return None
        return {"type": "product_cards", "trigger": self.rule, "products": self.cards}

    def text_lines(self) -> str:
        """The offer as plain text, for channels that show no cards."""
        lines = [self.text]
        for i, c in enumerate(self.cards, 1):
            brand = f" by {c['brand']}" if c.get("brand") else ""
            lines.append(f"{i}. {c['title']}{brand} — {c['price_text']}. {c['reason']}.")
        return "\n".join(lines)


def offer_replies(offer: Offer, rich: bool) -> list[Reply]:
    """The offer as bot messages: text and cards on channels that draw them, else numbered
    text; quick replies to look closer or move on."""
    buttons = [quick("Tell me more about the first", "tell me more about the first one")]
    buttons.append(quick("More like it", "more like the first one"))
    buttons.append(quick("Something else", "start over"))
    if not offer.cards:
        return [Reply(text=offer.text)]
    if rich:
        return [Reply(text=offer.text, payload=offer.payload(), buttons=buttons)]
    return [Reply(text=offer.text_lines(), buttons=buttons)]


@dataclass(frozen=True)
class Firing:
    """One firing (or, in a dry run, one that would happen) for ``tailor triggers run``."""

    rule: str
    channel: str
    customer_id: int | None
    sender_id: str | None
    products: list[int]
    status: str  # "sent", "would send", "pending chat", "failed: …", "skipped: …"


def _card(product: Product, reason: str) -> dict[str, Any]:
    return Suggestion.of(product, reason).to_card()


class TriggerEngine:
    """Evaluates trigger rules for shoppers, builds offers with the recommender, fires them.

    ``senders`` are the outbound platforms (:func:`tailor.marketing.outbound.senders_from_env`);
    ``predict`` is the module with ``restock_due`` and ``churn_risk`` (default
    ``tailor.profiles.predict``, imported when a rule of those types first runs).
    """

    def __init__(
        self,
        config: TriggerConfig,
        recommender: Recommender,
        senders: Mapping[str, Sender] | None = None,
        predict: Any = None,
    ) -> None:
        self.config = config
        self.recommender = recommender
        self.factory = recommender.session_factory
        self.senders = dict(senders or {})
        self._predict = predict
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    @property
    def predict(self) -> Any:
        """The predictive-scores module (restock and churn)."""
        if self._predict is None:
            try:
                self._predict = importlib.import_module("tailor.profiles.predict")
            except ImportError as exc:
                raise RuntimeError(
                    "restock_due and retention rules need tailor.profiles.predict "
                    "(restock_due, churn_risk); it is not installed"
                ) from exc
        return self._predict

    def usable(self, rule: TriggerRule) -> bool:
        """Enabled, and for restock and retention rules the predictive scores are there
        (without them such rules are skipped, with one warning)."""
        if not rule.enabled:
            return False
        if rule.type not in PREDICTIVE:
            return True
        try:
            self.predict  # noqa: B018 - imported on first use
        except RuntimeError as exc:
            if rule.name not in self._warned:
                self._warned.add(rule.name)
                log.warning("trigger %s skipped: %s", rule.name, exc)
            return False
        return True

    # -- checks ------------------------------------------------------------------------
    def _recipient_events(
        self, session: Session, customer_id: int | None, sender_id: str | None, since: datetime
    ) -> list[Activity]:
        rows = session.scalars(
            select(Event)
            .where(sender_filter(customer_id, sender_id), Event.created_at >= since)
            .order_by(Event.created_at, Event.id)
        )
        return [Activity(e.kind, e.product_id, as_utc(e.created_at), e.payload or {}) for e in rows]

    def may_fire(
        self,
        session: Session,
        rule: TriggerRule,
        customer_id: int | None,
        sender_id: str | None,
        now: datetime,
    ) -> str | None:
        """Why ``rule`` may not fire for this recipient now (None: it may): disabled,
        consent, frequency cap, cooldowns."""
        if not rule.enabled:
            return "disabled"
        if not allows_personalisation(session, customer_id, sender_id):
            return "personalisation refused"
        longest = max(
            rule.cap.period,
            rule.cooldown,
            self.config.cooldown,
            self.config.max_per_customer.period if self.config.max_per_customer else timedelta(0),
        )
        every = trigger_events(session, customer_id, sender_id, now - longest)
        mine = [as_utc(e.created_at) for e in every if (e.payload or {}).get("rule") == rule.name]
        if not cap_allows(mine, now, rule.cap, rule.cooldown):
            return "frequency cap"
        every_at = [as_utc(e.created_at) for e in every]
        if not cap_allows(every_at, now, self.config.max_per_customer, self.config.cooldown):
            return "cap across rules"
        if rule.rule_cooldown > timedelta(0):
            last = last_rule_firing(session, rule.name, now - rule.rule_cooldown)
            if last is not None and last > now - rule.rule_cooldown:
                return "rule cooldown"
        return None

    def subject(
        self,
        session: Session,
        rule: TriggerRule,
        customer_id: int | None,
        sender_id: str | None,
        now: datetime,
    ) -> Subject | None:
        """What ``rule`` would fire about for this recipient now, if anything."""
        name = None
        if customer_id is not None:
            customer = session.get(Customer, customer_id)
            name = customer.name.split()[0] if customer and customer.name else None
        if rule.type == "abandoned_cart":
            lookback = timedelta(days=rule.param("lookback_days"))
            events = self._recipient_events(session, customer_id, sender_id, now - lookback)
            items = abandoned_items(
                events,
                now,
                wait=timedelta(hours=rule.param("wait_hours")),
                idle=timedelta(minutes=rule.param("idle_minutes")),
                lookback=lookback,
            )
            for pid, at in items:
                product = session.get(Product, pid)
                if product is None or not product.in_stock:
                    continue
                return Subject(
                    pid,
                    {
                        "title": product.title,
                        "brand": product.brand or "",
                        "category": product.category.split(" > ")[-1].lower(),
                        "name": name or "",
                    },
                    at,
                )
            return None
        if customer_id is None:  # (only ANONYMOUS_SUBJECTS rules get past here)
            return None  # predictions need a customer's history
        if rule.type == "restock_due":
            due = self.predict.restock_due(
                session, customer_id, now, horizon_days=int(rule.param("horizon_days"))
            )
            due = [d for d in due if float(d.confidence) >= rule.param("min_confidence")]
            for d in sorted(due, key=lambda d: (d.due_at, -float(d.confidence))):
                product = session.get(Product, d.product_id) if d.product_id else None
                if product is not None and not product.in_stock:
                    continue
                return Subject(
                    product.id if product is not None else None,
                    {
                        "title": product.title if product is not None else "",
                        "category": str(d.category).split(" > ")[-1].lower(),
                        "reason": str(d.reason),
                        "name": name or "",
                    },
                    as_utc(d.last_bought_at),
                )
            return None
        if rule.type == "retention":
            risk = self.predict.churn_risk(session, customer_id, now)
            if risk is None or float(risk) < rule.param("min_risk"):
                return None
            return Subject(None, {"name": name or "", "risk": float(risk)})
        raise ValueError(f"unknown rule type {rule.type!r}")

    # -- offers -------------------------------------------------------------------------
    def build_offer(
        self, rule: TriggerRule, subject: Subject, shopper: ShopperContext, now: datetime
    ) -> Offer:
        """The rule's text and cards: the subject product, then ``rule.suggestions``
        products ranked for the shopper by the recommender (similar to the subject, or
        picks for them when there is no subject)."""
        cards: list[dict[str, Any]] = []
        if subject.product_id is not None:
            with self.factory() as session:
                product = session.get(Product, subject.product_id)
                if product is not None:
                    why = {
                        "abandoned_cart": "still in your cart",
                        "restock_due": str(subject.values.get("reason") or "time to restock"),
                    }.get(rule.type, "picked for you")
                    cards.append(_card(product, why))
        if rule.suggestions:
            crit = (
                Criteria(similar_to=subject.product_id)
                if subject.product_id is not None
                else Criteria()
            )
            exclude = [subject.product_id] if subject.product_id is not None else []
            rec = self.recommender.recommend(
                crit, rule.suggestions, exclude=exclude, shopper=shopper, now=now
            )
            cards.extend(s.to_card() for s in rec.suggestions)
        values = dict(subject.values)
        text = rule.render(**values)
        return Offer(rule.name, text, cards, subject.product_id)

    # -- the conversation ------------------------------------------------------------------
    def warm_up(self, now: datetime | None = None) -> int:
        """Run the checks a conversation's opening runs, for a shopper who cannot exist,
        without writing anything; returns how many rules were checked.

        For start-up: the first greeting of a new server took 5.6 ms in these checks against
        1.2 ms for the next ones (the statements compile on first use, the predictive scores
        load). A failing rule is logged and skipped, as when a greeting checks it."""
        now = now or datetime.now(UTC)
        checked: set[str] = set()
        for customer_id in (None, -1):  # anonymous, and a customer id no row has
            for rule in self._chat_rules(customer_id):
                checked.add(rule.name)
                try:
                    with self.factory() as session:  # closed unwritten: nothing is kept
                        self.may_fire(session, rule, customer_id, WARM_UP_SENDER, now)
                        self.subject(session, rule, customer_id, WARM_UP_SENDER, now)
                except Exception:
                    log.exception("warming up trigger %s failed", rule.name)
        return len(checked)

    def _chat_rules(self, customer_id: int | None) -> Iterator[TriggerRule]:
        """The rules, in file order, a conversation's opening checks for this shopper."""
        for rule in self.config.rules:
            if customer_id is None and rule.type not in ANONYMOUS_SUBJECTS:
                continue  # (its subject needs a customer's history: no queries to know that)
            if CHAT in rule.channels and self.usable(rule):
                yield rule

    def conversation_offer(
        self,
        sender_id: str,
        customer_id: int | None,
        input_channel: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Offer | None:
        """The first rule (in file order) that applies to the shopper opening this
        conversation, fired and logged; None if none applies. ``customer_id`` only from a
        verified identity."""
        now = now or datetime.now(UTC)
        for rule in self._chat_rules(customer_id):
            with self._lock, self.factory() as session:
                if self.may_fire(session, rule, customer_id, sender_id, now):
                    continue
                subject = self.subject(session, rule, customer_id, sender_id, now)
            if subject is None:
                continue
            shopper = self.recommender.shopper(sender_id, customer_id, dict(metadata or {}), now)
            if not shopper.personalised:
                continue
            offer = self.build_offer(rule, subject, shopper, now)
            with self._lock, self.factory.begin() as session:
                if self.may_fire(session, rule, customer_id, sender_id, now):
                    continue  # another conversation fired it meanwhile
                record_trigger(
                    session,
                    rule.name,
                    CHAT,
                    sender_id,
                    customer_id,
                    offer.product_ids,
                    {"subject": subject.product_id, "input_channel": input_channel},
                    at=now,
                )
            return offer
        return None

    # -- outbound -----------------------------------------------------------------------------
    def _local_tz(self, session: Session, customer_id: int) -> str | None:
        rows = session.scalars(
            select(Event.payload)
            .where(Event.customer_id == customer_id, Event.kind == "message")
            .order_by(Event.created_at.desc(), Event.id.desc())
            .limit(20)
        )
        for payload in rows:
            tz = (payload or {}).get("tz")
            if isinstance(tz, str) and tz:
                return tz
        return None

    def run(
        self,
        now: datetime | None = None,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Firing]:
        """Evaluate every rule for every customer now: send outbound offers where the customer
        opted in on one of the rule's channels (and the platform is configured), note the
        ones that wait for the customer's next conversation. ``dry_run`` sends and logs
        nothing. ``progress(done, total)`` is called per customer."""
        now = now or datetime.now(UTC)
        with self.factory() as session:
            customers = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        out: list[Firing] = []
        for i, cid in enumerate(customers, 1):
            out.extend(self._run_customer(cid, now, dry_run))
            if progress is not None:
                progress(i, len(customers))
        return out

    def _run_customer(self, customer_id: int, now: datetime, dry_run: bool) -> list[Firing]:
        fired: list[Firing] = []
        for rule in self.config.rules:
            if not self.usable(rule):
                continue
            with self.factory() as session:
                if self.may_fire(session, rule, customer_id, None, now):
                    continue
                subject = self.subject(session, rule, customer_id, None, now)
                if subject is None:
                    continue
                opted = marketing_channels(session, customer_id)
                tz = self._local_tz(session, customer_id)
            channel = next((c for c in rule.outbound if c in opted), None)
            if channel is None:
                if CHAT in rule.channels:
                    fired.append(Firing(rule.name, CHAT, customer_id, None, [], "pending chat"))
                continue
            if in_quiet_hours(now, tz, rule.quiet_hours, self.config.timezone):
                fired.append(Firing(rule.name, channel, customer_id, None, [], "skipped: quiet"))
                continue
            sender = self.senders.get(channel)
            if sender is None and not dry_run:
                fired.append(
                    Firing(rule.name, channel, customer_id, None, [], "skipped: not configured")
                )
                continue
            user_id = opted[channel]
            shopper = self.recommender.shopper(user_id, customer_id, None, now)
            if not shopper.personalised:
                continue
            offer = self.build_offer(rule, subject, shopper, now)
            if dry_run:
                fired.append(
                    Firing(
                        rule.name, channel, customer_id, user_id, offer.product_ids, "would send"
                    )
                )
                break
            assert sender is not None
            try:
                sender.send(user_id, offer.text, offer.payload())
            except OutboundError as exc:
                log.warning("trigger %s for customer %s failed: %s", rule.name, customer_id, exc)
                fired.append(Firing(rule.name, channel, customer_id, user_id, [], f"failed: {exc}"))
                continue
            with self.factory.begin() as session:
                record_trigger(
                    session,
                    rule.name,
                    channel,
                    user_id,
                    customer_id,
                    offer.product_ids,
                    {"subject": subject.product_id},
                    at=now,
                )
            fired.append(
                Firing(rule.name, channel, customer_id, user_id, offer.product_ids, "sent")
            )
            break  # one outbound message per customer per run
        return fired


# -- measuring -------------------------------------------------------------------------------


@dataclass
class RulePerformance:
    """What a rule's firings led to: products shown, and how many of those (recipient,
    product) pairs were then clicked, put in the cart and bought within the attribution
    window."""

    rule: str
    fired: int = 0
    shown: int = 0
    clicked: int = 0
    carted: int = 0
    purchased: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)

    def rate(self, outcome: str) -> float:
        """``clicked`` / ``carted`` / ``purchased`` per product shown (0 when none shown)."""
        return getattr(self, outcome) / self.shown if self.shown else 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (the dashboard's rows)."""
        return {
            "rule": self.rule,
            "fired": self.fired,
            "shown": self.shown,
            "clicked": self.clicked,
            "carted": self.carted,
            "purchased": self.purchased,
            "click_rate": round(self.rate("clicked"), 4),
            "cart_rate": round(self.rate("carted"), 4),
            "purchase_rate": round(self.rate("purchased"), 4),
            "by_channel": dict(self.by_channel),
        }


def _who(e: Event) -> str:
    return f"c{e.customer_id}" if e.customer_id is not None else f"s{e.sender_id}"


def trigger_performance(
    session: Session,
    since: datetime,
    attribution_days: float = 7.0,
    until: datetime | None = None,
) -> list[RulePerformance]:
    """Per rule, since ``since``: firings, products shown, and the shown (recipient, product)
    pairs clicked, carted and purchased within ``attribution_days`` after being shown."""
    until = until or datetime.now(UTC)
    window = timedelta(days=attribution_days)
    perf: dict[str, RulePerformance] = {}
    for e in session.scalars(
        select(Event).where(
            Event.kind == "trigger", Event.created_at >= since, Event.created_at <= until
        )
    ):
        p = e.payload or {}
        rule = str(p.get("rule"))
        row = perf.setdefault(rule, RulePerformance(rule))
        row.fired += 1
        channel = str(p.get("channel"))
        row.by_channel[channel] = row.by_channel.get(channel, 0) + 1
    shown = [
        e
        for e in session.scalars(
            select(Event).where(
                Event.kind == "shown",
                Event.created_at >= since,
                Event.created_at <= until,
                Event.product_id.is_not(None),
                Event.payload["trigger"].as_string().is_not(None),
            )
        )
        if (e.payload or {}).get("trigger")
    ]
    if not shown:
        return sorted(perf.values(), key=lambda r: r.rule)
    products = {int(e.product_id) for e in shown if e.product_id is not None}
    outcomes: dict[tuple[str, int, str], list[datetime]] = defaultdict(list)
    for e in session.scalars(
        select(Event).where(
            Event.kind.in_(OUTCOMES),
            Event.created_at >= since,
            Event.product_id.in_(products),
        )
    ):
        outcomes[(_who(e), int(e.product_id or 0), e.kind)].append(as_utc(e.created_at))
    counted: set[tuple[str, str, int, str]] = set()
    for e in shown:
        rule = str(e.payload["trigger"])
        row = perf.setdefault(rule, RulePerformance(rule))
        who, pid, at = _who(e), int(e.product_id or 0), as_utc(e.created_at)
        row.shown += 1
        for kind, attr in zip(OUTCOMES, ("clicked", "carted", "purchased"), strict=True):
            key = (rule, who, pid, kind)
            if key in counted:
                continue
            if any(at <= t <= at + window for t in outcomes.get((who, pid, kind), [])):
                counted.add(key)
                setattr(row, attr, getattr(row, attr) + 1)
    return sorted(perf.values(), key=lambda r: r.rule)


def format_performance(rows: Sequence[RulePerformance]) -> str:
    """A plain-text table of :func:`trigger_performance` rows."""
    head = f"{'rule':<22}{'fired':>7}{'shown':>7}{'clicked':>9}{'carted':>8}{'bought':>8}  CTR"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.rule:<22}{r.fired:>7}{r.shown:>7}{r.clicked:>9}{r.carted:>8}{r.purchased:>8}"
            f"  {r.rate('clicked'):.1%}"
        )
    if not rows:
        lines.append("(no trigger fired in this period)")
    return "\n".join(lines)


_default: TriggerEngine | None = None
_default_lock = threading.Lock()


def get_default_engine(recommender: Recommender, settings: Settings | None = None) -> TriggerEngine:
    """The process-wide engine for ``recommender``, its rules read from the configured
    triggers file on first use (outbound senders from the ``TAILOR_*`` platform variables)."""
    from tailor.marketing.outbound import senders_from_env

    global _default
    with _default_lock:
        if _default is None or _default.recommender is not recommender:
            settings = settings or Settings.load()
            _default = TriggerEngine(
                load_trigger_config(settings.triggers_file), recommender, senders_from_env()
            )
        return _default
