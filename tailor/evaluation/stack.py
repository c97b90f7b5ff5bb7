"""A private running bot for evaluations: the real action server and Rasa server on free
ports, over a *copy* of the embedded database, so thousands of evaluation conversations
never land in the shop's own profiles and events.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tailor.config import Settings
from tailor.runtime.processes import free_port

__all__ = ["eval_settings", "running_bot"]

Say = Callable[[str, str], list[dict[str, Any]]]


def _sqlite_path(url: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None


def eval_settings(settings: Settings, name: str = "eval") -> Settings:
    """Settings for a private stack: home ``<home>/<name>``, the SQLite database copied
    there (a server database is used as is), the same index, models and bot, free ports."""
    home = Path(settings.home) / name
    home.mkdir(parents=True, exist_ok=True)
    database_url = settings.database_url
    source = _sqlite_path(settings.database_url)
    if source is not None and source.is_file():
        target = home / f"tailor-{name}.db"
        for stale in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            stale.unlink(missing_ok=True)
        # SQLite's online backup: consistent even with a write-ahead log beside the file
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        database_url = f"sqlite:///{target}"
    return settings.replace(
        home=home,
        database_url=database_url,
        index_dir=settings.index_dir,
        models_dir=settings.models_dir,
        rasa_url="",
        action_url="",
        rasa_port=free_port(),
        action_port=free_port(),
        web_port=free_port(),
    )


@contextmanager
def running_bot(
    settings: Settings, model: Path, echo: Callable[[str], None] | None = None
) -> Iterator[Say]:
    """Start the action server and Rasa (``model``) for ``settings``; yield ``say(sender,
    text)`` posting to the REST channel; stop both on exit."""
    from tailor.runtime import processes as P

    actions = P.action_server(settings)
    rasa = P.rasa_server(settings, model)
    services = [actions, rasa]
    client = httpx.Client(timeout=60.0)
    try:
        for svc in services:
            svc.start()
        actions.wait_ready(180, echo=echo)
        rasa.wait_ready(600, echo=echo)
        P.warm_up_actions(settings)
        url = f"{settings.rasa_url}/webhooks/rest/webhook"

        def say(sender: str, text: str) -> list[dict[str, Any]]:
            resp = client.post(url, json={"sender": sender, "message": text})
            resp.raise_for_status()
            return list(resp.json())

        yield say
    finally:
        client.close()
        for svc in reversed(services):
            svc.stop()
