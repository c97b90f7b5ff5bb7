"""Storage: SQLAlchemy models, engines and sessions, catalog data functions, importers."""

from tailor.store.db import init_db, make_engine, make_session_factory, session_scope
from tailor.store.models import Base, Customer, Event, Product, Review

__all__ = [
    "Base",
    "Customer",
    "Event",
    "Product",
    "Review",
    "init_db",
    "make_engine",
    "make_session_factory",
    "session_scope",
]
