"""Typed SQLAlchemy 2.x models: catalog (products, reviews), customers and events.

Everything that changes stored state goes through ``tailor.store``; callers own the session.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Timezone-aware now, used for timestamps."""
    return datetime.now(UTC)


def as_utc(t: datetime) -> datetime:
    """``t`` with UTC attached if it has no zone (SQLite returns stored times naive)."""
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of all Tailor tables."""


#: Fields whose change alters a product's embedding text or its filters; they make the hash.
CONTENT_FIELDS: tuple[str, ...] = (
    "title",
    "description",
    "category",
    "brand",
    "price",
    "currency",
    "colour",
    "material",
    "sizes",
    "rating",
    "review_count",
    "stock",
    "tags",
)


class Product(Base):
    """A sellable item. ``id`` is the integer key used by the vector index."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    source: Mapped[str] = mapped_column(String(64), default="manual")
    title: Mapped[str] = mapped_column(String(512))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(256), index=True)
    brand: Mapped[str | None] = mapped_column(String(128), index=True, default=None)
    price: Mapped[float] = mapped_column(Numeric(12, 2, asdecimal=False))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    colour: Mapped[str | None] = mapped_column(String(64), default=None)
    material: Mapped[str | None] = mapped_column(String(64), default=None)
    sizes: Mapped[list[str]] = mapped_column(JSON, default=list)
    rating: Mapped[float | None] = mapped_column(Float, default=None)
    review_count: Mapped[int] = mapped_column(Integer, default=0)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    image_url: Mapped[str | None] = mapped_column(String(1024), default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(40), default="")
    #: Mean signed sentiment (positive − negative, in [-1, 1]) of the scored reviews, and how
    #: many were scored; a quality signal next to the star rating (not part of the hash).
    review_sentiment: Mapped[float | None] = mapped_column(Float, default=None)
    review_sentiment_count: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    reviews: Mapped[list[Review]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="Review.id"
    )

    def compute_hash(self) -> str:
        """SHA-1 over the content fields; changes whenever the index must re-embed or re-filter."""
        payload = {name: getattr(self, name) for name in CONTENT_FIELDS}
        if payload["price"] is not None:
            payload["price"] = round(float(payload["price"]), 2)
        blob = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha1(blob.encode("utf-8")).hexdigest()

    def refresh_hash(self) -> None:
        """Recompute ``content_hash`` and ``updated_at`` after a change."""
        new = self.compute_hash()
        if new != self.content_hash:
            self.content_hash = new
            self.updated_at = utcnow()

    @property
    def in_stock(self) -> bool:
        """True when at least one unit is available."""
        return (self.stock or 0) > 0

    def __repr__(self) -> str:
        return f"Product(id={self.id!r}, sku={self.sku!r}, title={self.title!r})"


class CatalogState(Base):
    """One row (``id`` 1): ``version`` grows in every transaction that changes products.

    Bumped by session hooks in :mod:`tailor.store.catalog` (any flush or bulk statement that
    writes ``products``), so a process that keeps products in memory can check in one primary
    key lookup whether they are still current (:class:`tailor.store.catalog.ProductCache`).
    """

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class Review(Base):
    """A shopper's review of a product."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Sentiment of ``text`` by the configured model (``None`` until scored).
    sentiment_label: Mapped[str | None] = mapped_column(String(16), default=None)
    sentiment_score: Mapped[float | None] = mapped_column(Float, default=None)

    product: Mapped[Product] = relationship(back_populates="reviews")


class Customer(Base):
    """A known shopper of the store, identified by the store's own ``external_id``."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(256))
    email: Mapped[str | None] = mapped_column(String(256), default=None)
    age_band: Mapped[str | None] = mapped_column(String(16), default=None)
    gender: Mapped[str | None] = mapped_column(String(32), default=None)
    country: Mapped[str | None] = mapped_column(String(64), default=None)
    region: Mapped[str | None] = mapped_column(String(64), default=None)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Profile(Base):
    """What Tailor keeps about one shopper: stated preferences and the personalisation consent.

    A visitor gets an anonymous profile keyed by their conversation (``sender_id``); when they
    identify, it is merged into the customer's profile (``customer_id`` set, one per
    customer) and deleted.
    """

    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), unique=True, default=None
    )
    sender_id: Mapped[str | None] = mapped_column(String(128), unique=True, default=None)
    #: Whether suggestions may use profile, segments and history (opt-out is stored here).
    personalisation: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Stated preferences: ``[{"kind", "value", "positive", "evidence", "at"}]``.
    preferences: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChannelLink(Base):
    """A messaging platform's user id linked to a customer (set by the store, not the chat)."""

    __tablename__ = "channel_links"
    __table_args__ = (Index("ux_channel_links", "channel", "user_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: When the customer explicitly agreed to marketing messages (reminders, offers) on this
    #: channel; ``None``: no outbound message is ever sent here (tailor/marketing/triggers.py).
    marketing_opt_in_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )


class Event(Base):
    """Something a shopper did or was shown: ``kind`` is e.g. shown, click, purchase, feedback.

    ``message`` events are the shopper's chat messages, with their sentiment label in the
    payload and the signed score (positive − negative) in ``value``.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_sender_time", "sender_id", "created_at"),
        # Time-range reads of one kind (the marketing dashboard, reports).
        Index("ix_events_kind_time", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    sender_id: Mapped[str | None] = mapped_column(String(128), default=None)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True, default=None
    )
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), index=True, default=None
    )
    value: Mapped[float | None] = mapped_column(Float, default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SegmentModel(Base):
    """A fitted segmentation model (e.g. kind "rfm"), versioned per kind."""

    __tablename__ = "segment_models"
    __table_args__ = (Index("ux_segment_models_kind_version", "kind", "version", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CustomerSegment(Base):
    """A customer's current segment of one kind, with the model version that assigned it."""

    __tablename__ = "customer_segments"
    __table_args__ = (Index("ux_customer_segments", "customer_id", "kind", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    segment: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CustomerScore(Base):
    """A predicted score of one customer (e.g. kind "churn": the probability of no purchase
    in the model's horizon), with what it was computed from and the model version."""

    __tablename__ = "customer_scores"
    __table_args__ = (Index("ux_customer_scores", "customer_id", "kind", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32), index=True)
    value: Mapped[float] = mapped_column(Float)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model_version: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
