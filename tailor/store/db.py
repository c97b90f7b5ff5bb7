"""Engines and sessions. The caller owns the session: ``with session_scope(factory) as s:``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tailor.store.models import Base, CatalogState


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for any SQLAlchemy URL; SQLite files get their folder, WAL and FKs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if database and database != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class SchemaError(RuntimeError):
    """The database's schema is older than the code in a way that cannot be added to."""


def add_missing_columns(engine: Engine) -> list[str]:
    """Add columns the models gained since a table was created; the ``table.column`` added.

    Only additive changes are made, and only for columns that may hold NULL (new signals,
    caches): existing data is never rewritten. Anything else raises :class:`SchemaError`.
    """
    inspector = inspect(engine)
    existing_tables = set(inspector.get_table_names())
    added: list[str] = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name not in existing_tables:
                continue
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable or column.primary_key:
                    raise SchemaError(
                        f"table {table.name!r} lacks the required column {column.name!r}; "
                        "this database predates the code, rebuild it (tailor demo) or migrate"
                    )
                ddl_type = column.type.compile(dialect=engine.dialect)
                conn.execute(
                    text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {ddl_type}')
                )
                added.append(f"{table.name}.{column.name}")
    return added


def add_missing_indexes(engine: Engine) -> list[str]:
    """Create indexes the models gained since a table was created; the names created."""
    inspector = inspect(engine)
    existing_tables = set(inspector.get_table_names())
    added: list[str] = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name not in existing_tables:
                continue
            have = {ix["name"] for ix in inspector.get_indexes(table.name)}
            for index in table.indexes:
                if index.name and index.name not in have:
                    index.create(conn)
                    added.append(str(index.name))
    return added


def init_db(engine: Engine) -> None:
    """Create all tables that do not exist yet, add nullable columns and indexes they gained."""
    Base.metadata.create_all(engine)
    add_missing_columns(engine)
    add_missing_indexes(engine)
    _seed_catalog_state(engine)


def _seed_catalog_state(engine: Engine) -> None:
    """The catalog version's one row, so writers only ever update it (two processes creating
    a database at once: the second insert fails and is ignored)."""
    try:
        with engine.begin() as conn:
            if conn.scalar(select(CatalogState.id).where(CatalogState.id == 1)) is None:
                conn.execute(insert(CatalogState).values(id=1, version=0))
    except IntegrityError:
        pass


def make_session_factory(url_or_engine: str | Engine, create: bool = True) -> sessionmaker[Session]:
    """A session factory bound to an engine (built from a URL if needed); creates tables."""
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    if create:
        init_db(engine)
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on error."""
    with factory.begin() as session:
        yield session
