"""No-op custom actions: the floor of the turn-latency benchmark (``tailor bench``).

Served by the Rasa SDK action server in place of ``actions`` (``--actions
tailor.bench.noop_actions``), this module registers one action for every custom action the
domain declares (plus ``action_warmup``). Each answers with one short text and no events, so
Rasa runs the same NLU, the same policies and the same HTTP call to an action server as with
the full bot, and the difference between the two is what our actions cost.

The action names are read from the domain file (``TAILOR_BOT_DIR``, default ``bot/``) when
the module is imported by the action server; nothing heavy is imported.
"""

from __future__ import annotations

import abc
import os
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from tailor.config import PROJECT_ROOT

#: Actions the runtime calls that are not in the domain (the recommender warm-up).
EXTRA_ACTIONS = ("action_warmup",)


def domain_actions(bot_dir: Path) -> list[str]:
    """The custom action names declared in ``bot_dir/domain.yml``, in order."""
    domain = yaml.safe_load((bot_dir / "domain.yml").read_text(encoding="utf-8")) or {}
    names = [str(a) for a in domain.get("actions") or [] if str(a).startswith("action_")]
    if not names:
        raise ValueError(f"{bot_dir / 'domain.yml'} declares no custom actions")
    return names


class NoopAction(Action, abc.ABC):
    """Base of the generated no-op actions (abstract, so the executor skips it)."""

    @abc.abstractmethod
    def name(self) -> str:
        """The action name this class stands in for."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Answer with one short text and change nothing."""
        dispatcher.utter_message(text="ok")
        return []


def _class_name(action: str) -> str:
    return "Noop" + "".join(part.title() for part in action.split("_"))


def _namer(action: str) -> Any:
    def name(self: Action) -> str:
        return action

    return name


def _register(names: list[str]) -> dict[str, type[NoopAction]]:
    made: dict[str, type[NoopAction]] = {}
    for action in dict.fromkeys([*names, *EXTRA_ACTIONS]):
        cls = type(_class_name(action), (NoopAction,), {"name": _namer(action)})
        cls.__module__ = __name__
        # module attributes, so Sanic can pickle them into its worker process
        globals()[cls.__name__] = cls
        made[action] = cls
    return made


_bot_dir = Path(os.environ.get("TAILOR_BOT_DIR") or PROJECT_ROOT / "bot")
#: The generated classes by action name; the SDK's executor registers every Action subclass.
NOOP_ACTIONS = _register(domain_actions(_bot_dir))
