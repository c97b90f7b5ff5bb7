"""The ``tailor`` command: install, check, build the catalog and index, train, run, chat.

Every subcommand has ``--help``. Heavy imports happen inside the subcommands, so
``tailor --help`` is instant.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import webbrowser
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tailor.config import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from tailor.runtime.processes import Service
    from tailor.sentiment.reviews import ReviewScoreReport

RASA_PIN = "rasa==3.6.21"


def echo(msg: str) -> None:
    """Progress and status lines go to stderr, results to stdout."""
    print(msg, file=sys.stderr, flush=True)


class CliError(Exception):
    """A user-facing error: printed without a traceback, exit code 2."""


# -- helpers ---------------------------------------------------------------------------
def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "home": getattr(args, "home", None),
        "database_url": getattr(args, "database_url", None),
        "rasa_port": getattr(args, "rasa_port", None),
        "action_port": getattr(args, "action_port", None),
        "web_port": getattr(args, "web_port", None),
        "demo_products": getattr(args, "products", None),
    }
    return Settings.load(**{k: v for k, v in overrides.items() if v is not None})


def find_python310() -> str:
    """A Python 3.10 interpreter for Rasa: pyenv's, else one on PATH; a clear error otherwise."""
    candidates: list[str] = []
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(str(p) for p in pyenv_root.glob("versions/3.10*/bin/python3.10"))
    on_path = shutil.which("python3.10")
    if on_path:
        candidates.append(on_path)
    for cand in candidates:
        try:
            out = subprocess.run([cand, "--version"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and "3.10" in (out.stdout + out.stderr):
            return cand
    raise CliError(
        "No Python 3.10 interpreter found; Rasa 3.6 needs Python <= 3.10.\n"
        "Install one with pyenv:  pyenv install 3.10   (then run this command again)."
    )


def _stream(cmd: Sequence[str], label: str, env: dict[str, str] | None = None) -> None:
    """Run a command, showing a one-line progress counter of its output lines."""
    started = time.monotonic()
    proc = subprocess.Popen(
        list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None  # guaranteed by stdout=PIPE
    tail: list[str] = []
    count = 0
    for line in proc.stdout:
        if "is ignored: it is neither a file nor a directory" in line:
            continue
        tail = [*tail[-30:], line.rstrip()]
        if line.startswith(("Collecting", "Downloading", "Installing", "Successfully", "Building")):
            count += 1
            sys.stderr.write(f"\r  {label}: {count} steps, {time.monotonic() - started:4.0f} s  ")
            sys.stderr.flush()
    code = proc.wait()
    sys.stderr.write("\n")
    if code != 0:
        raise CliError(f"{label} failed (exit {code}):\n" + "\n".join(tail[-20:]))


def install_rasa_venv(settings: Settings) -> bool:
    """Create the Rasa venv on Python 3.10 if it is missing or incomplete; True if installed now."""
    venv = Path(settings.rasa_venv)
    stamp = venv / ".tailor-installed"
    if stamp.exists() and stamp.read_text().strip() == RASA_PIN:
        return False
    python = find_python310()
    echo(f"Creating the Rasa environment in {venv} with {python} (takes a few minutes once)…")
    if venv.exists() and not (venv / "bin" / "python").exists():
        shutil.rmtree(venv)
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    _stream([*pip, "pip<25", "setuptools<70", "wheel"], "pip")
    _stream([*pip, RASA_PIN, "psycopg2-binary<2.10"], "rasa")
    stamp.write_text(RASA_PIN + "\n")
    return True


# -- subcommands -----------------------------------------------------------------------
def cmd_install(args: argparse.Namespace) -> int:
    """Create what is missing: the Rasa venv (the 3.11 venv is made by scripts/bootstrap.sh)."""
    settings = _settings(args)
    done = install_rasa_venv(settings)
    echo("Rasa environment ready." if done else "Rasa environment already installed.")
    return cmd_check(args)


def cmd_check(args: argparse.Namespace) -> int:
    """Report what is installed and built."""
    from tailor.runtime.rasa import model_path

    settings = _settings(args)
    rows: list[tuple[str, bool, str]] = []
    rasa = Path(settings.rasa_venv) / "bin" / "rasa"
    rows.append(("rasa venv", rasa.exists(), str(settings.rasa_venv)))
    model_dir = Path(settings.embedding_model)
    rows.append(("embedding model", (model_dir / "config.json").exists(), str(model_dir)))
    db_ok = False
    detail = settings.database_url
    try:
        from tailor.store import make_session_factory
        from tailor.store.catalog import count_products

        with make_session_factory(settings.database_url)() as session:
            n = count_products(session)
        db_ok, detail = n > 0, f"{n} products in {settings.database_url}"
    except Exception as exc:  # report, don't crash, in a health check
        detail = f"{settings.database_url}: {exc}"
    rows.append(("catalog", db_ok, detail))
    manifest = Path(str(settings.index_dir)) / "manifest.json"
    rows.append(("index", manifest.exists(), str(manifest.parent)))
    try:
        mp = model_path(settings)
        rows.append(("rasa model", mp.exists(), str(mp)))
    except OSError as exc:
        rows.append(("rasa model", False, str(exc)))
    for name, ok, info in rows:
        print(f"{'ok ' if ok else '-- '} {name:16} {info}")
    return 0 if rows[0][1] and rows[1][1] else 1


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate the demo catalog and customers into the database."""
    from tailor.demo import load_demo
    from tailor.store import make_session_factory

    settings = _settings(args)
    factory = make_session_factory(settings.database_url)
    summary = load_demo(
        factory,
        n_products=args.products or settings.demo_products,
        n_customers=args.customers or settings.demo_customers,
        seed=args.seed if args.seed is not None else settings.seed,
        progress=True,
    )
    print(summary)
    print(score_review_sentiment(settings).render())
    from tailor.profiles.segments import fit_all_segments

    try:
        # New histories: refit so segments describe the data just written.
        report = fit_all_segments(factory, seed=settings.seed)
        print(f"Segments refitted: behavioural model v{report.behavioural.version}.")
    except ValueError as exc:
        print(f"Segments: not fitted ({exc}).")
    ensure_scores(settings, refit=True)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import a catalog file (DummyJSON or CSV)."""
    from tailor.store import make_session_factory
    from tailor.store.importers import import_csv, import_dummyjson

    settings = _settings(args)
    path = Path(args.path)
    if not path.exists():
        raise CliError(f"No such file: {path}")
    factory = make_session_factory(settings.database_url)
    if args.format == "dummyjson":
        summary = import_dummyjson(factory, path, progress=True)
    else:
        mapping: dict[str, str] = {}
        for item in args.map or []:
            if "=" not in item:
                raise CliError(f"--map takes FIELD=COLUMN, got {item!r}")
            field, column = item.split("=", 1)
            mapping[field.strip()] = column.strip()
        try:
            summary = import_csv(factory, path, mapping or None, progress=True)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    print(summary.render())
    print(score_review_sentiment(settings).render())
    return 0


def _ensure_catalog(settings: Settings) -> None:
    from tailor.demo import load_demo
    from tailor.store import make_session_factory
    from tailor.store.catalog import count_products

    factory = make_session_factory(settings.database_url)
    with factory() as session:
        n = count_products(session)
    if n == 0:
        echo(f"Building the demo catalog ({settings.demo_products} products)…")
        t0 = time.monotonic()
        load_demo(
            factory, settings.demo_products, settings.demo_customers, settings.seed, progress=True
        )
        echo(f"Demo catalog ready in {time.monotonic() - t0:.0f} s.")
    else:
        echo(f"Catalog: {n} products.")


def score_review_sentiment(
    settings: Settings, rescore: bool = False, model: str | None = None
) -> ReviewScoreReport:
    """Score the reviews that have no sentiment yet (every review with ``rescore``) and update
    their products' mean review sentiment; a tqdm bar on stderr. Nothing to score costs a
    couple of queries (the model is not loaded)."""
    from tailor.sentiment import model_for
    from tailor.sentiment.reviews import score_reviews
    from tailor.store import make_session_factory

    factory = make_session_factory(settings.database_url)
    try:
        scorer = model_for(settings, model, bulk=True)
    except FileNotFoundError as exc:
        raise CliError(f"{exc} (see --model / TAILOR_SENTIMENT_MODEL)") from exc
    return score_reviews(factory, scorer, rescore=rescore, progress=True)


def prepare_sentiment(settings: Settings) -> None:
    """Export the message-sentiment model to ONNX once, before shoppers come (a no-op when
    the export exists or the torch backend is configured)."""
    from tailor.sentiment import model_for

    t0 = time.monotonic()
    if model_for(settings).prepare():
        echo(f"Sentiment model: exported to ONNX in {time.monotonic() - t0:.1f} s.")


def build_index(settings: Settings, rebuild: bool = False) -> str:
    """Open (build, sync or load) the index; returns what was done."""
    from tailor.retrieval import ProductSearch
    from tailor.store import make_session_factory

    factory = make_session_factory(settings.database_url)
    index_dir = Path(str(settings.index_dir))
    if rebuild and index_dir.exists():
        shutil.rmtree(index_dir)
    t0 = time.monotonic()
    try:
        # A missing, partial or corrupt index is rebuilt by open(); this is when even that fails.
        search = ProductSearch.open_configured(settings, factory, progress=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CliError(
            f"The index at {index_dir} is missing or corrupt and could not be rebuilt "
            f"({type(exc).__name__}: {exc}). Fix the cause (disk space, permissions, the "
            "catalog), then run `tailor index --rebuild`."
        ) from exc
    report = str(search.last_open_report)
    echo(f"Index: {report} ({len(search)} products, {time.monotonic() - t0:.1f} s).")
    return report


def write_lookups_for(settings: Settings) -> Path:
    """Regenerate the NLU lookup tables from the catalog."""
    from tailor.nlu.lookups import write_lookups
    from tailor.nlu.vocab import Vocabulary
    from tailor.store import make_session_factory

    factory = make_session_factory(settings.database_url)
    with factory() as session:
        vocab = Vocabulary.from_session(session)
    out = Path(settings.bot_dir) / "data" / "generated" / "lookups.yml"
    before = out.read_bytes() if out.exists() else b""
    write_lookups(vocab, out)
    changed = out.read_bytes() != before
    echo(f"Lookup tables {'updated' if changed else 'unchanged'}: {out}")
    return out


def cmd_index(args: argparse.Namespace) -> int:
    """Build the vector index, or bring it up to date incrementally."""
    settings = _settings(args)
    build_index(settings, rebuild=args.rebuild)
    return 0


def cmd_lookups(args: argparse.Namespace) -> int:
    """Generate lookup tables (brands, colours, materials, product types) from the catalog."""
    write_lookups_for(_settings(args))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train the Rasa model if its inputs changed (cached by fingerprint)."""
    from tailor.runtime.rasa import RasaNotInstalled, train

    settings = _settings(args)
    write_lookups_for(settings)
    try:
        path, trained = train(settings, force=args.force, echo=echo)
    except RasaNotInstalled as exc:
        raise CliError(str(exc)) from exc
    echo(("Trained " if trained else "Reusing cached model ") + str(path))
    print(path)
    return 0


def stop_on_sigterm() -> None:
    """Make SIGTERM and SIGHUP stop this process the way Ctrl-C does, so ``tailor run``'s
    cleanup stops its services (a service manager, ``kill`` or a closed terminal would
    otherwise leave them running). Later signals are ignored so the cleanup can finish."""
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set in the main thread

    def interrupt(signum: int, _frame: object) -> None:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        echo(f"Received {signal.Signals(signum).name}.")
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def cmd_run(args: argparse.Namespace) -> int:
    """Build what is missing, start the action server, Rasa and the web page; Ctrl-C (or
    SIGTERM) stops them."""
    from tailor.runtime import processes as P
    from tailor.runtime.secrets import ensure_customer_token_secret

    stop_on_sigterm()
    try:
        settings = _settings(args)
        if getattr(args, "profile", None):
            settings = settings.replace(profile=args.profile)
        settings = ensure_customer_token_secret(settings)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if settings.profile == "production":
        return _run_production(settings, args)
    t_start = time.monotonic()
    try:
        P.check_ports(settings)
    except P.ServiceError as exc:
        raise CliError(str(exc)) from exc
    model = _prepared_bot(settings)

    actions = P.action_server(settings)
    try:
        rasa = P.rasa_server(settings, model)
    except ValueError as exc:  # e.g. a messaging platform configured only in part
        raise CliError(str(exc)) from exc
    token = rasa.env["TAILOR_RASA_TOKEN"]
    web = P.web_server(settings, token)
    services = [actions, rasa, web]

    def start_and_serve() -> int:
        echo("Starting the action server, the Rasa server and the web app…")
        if rasa.cpus and actions.cpus:
            echo(
                f"  Rasa server on {P.describe_cpus(rasa.cpus)}, action server on "
                f"{P.describe_cpus(actions.cpus)} (TAILOR_CPU_AFFINITY=off to let the "
                "scheduler place them)"
            )
        if P.turn_hints(settings) == "on":
            echo(
                "  Rasa hints the action server about each message before calling it "
                "(TAILOR_TURN_HINTS=off to turn that off)"
            )
        for svc in services:
            svc.start()
        for svc in services:
            took = svc.wait_ready(timeout=600 if svc is rasa else 180, echo=echo)
            echo(f"  {svc.name} ready in {took:.1f} s (log: {svc.log_path})")
        P.warm_up_actions(settings)
        url = f"http://{settings.host}:{settings.web_port}/"
        echo(f"Ready in {time.monotonic() - t_start:.0f} s.")
        print(f"\n  Tailor is running: open {url}\n  (Ctrl-C to stop)\n", flush=True)
        return _serve(services, url, args)

    def stop() -> None:
        for svc in reversed(services):
            svc.stop()

    return _until_stopped(start_and_serve, stop)


def _until_stopped(body: Callable[[], int], stop: Callable[[], None]) -> int:
    """Run ``body`` (start the services, then serve): Ctrl-C ends it with 0, a service that
    fails is a :class:`CliError`, and ``stop`` runs whatever happened."""
    from tailor.runtime import processes as P

    try:
        return body()
    except KeyboardInterrupt:
        echo("Stopping…")
        return 0
    except P.ServiceError as exc:
        raise CliError(str(exc)) from exc
    finally:
        with _interrupts_ignored():
            stop()


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """Ignore Ctrl-C, SIGTERM and SIGHUP while the services stop: a second, impatient Ctrl-C
    would otherwise end this process half-way and leave the rest running (each service has
    its own process group, so the terminal's signal never reaches it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in names}
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _serve(services: Sequence[Service], url: str, args: argparse.Namespace) -> int:
    """Open the page if asked, then wait while every service runs; 1 when one stops."""
    if args.open:
        webbrowser.open(url)
    if args.exit_when_ready:
        return 0
    while all(s.alive() for s in services):
        time.sleep(1.0)
    for s in services:
        if not s.alive():
            echo(f"{s.name} stopped unexpectedly:\n{s.tail()}")
    return 1


def _run_production(settings: Settings, args: argparse.Namespace) -> int:
    """The production profile: PostgreSQL, Redis, RabbitMQ, replicas behind nginx, the
    analytics consumer and the web app (``tailor.runtime.production``)."""
    from tailor.runtime import processes as P
    from tailor.runtime import production as prod

    t_start = time.monotonic()
    settings = prod.production_settings(settings)
    try:
        echo("Production profile: checking PostgreSQL, Redis and RabbitMQ…")
        prod.prepare_databases(settings)
        model = _prepared_bot(settings)
        stack = prod.build_stack(settings, model)
        prod.check_stack_ports(settings, stack)
    except (prod.ServiceUnavailable, P.ServiceError, ValueError) as exc:
        raise CliError(str(exc)) from exc

    def start_and_serve() -> int:
        echo(
            f"Starting {len(stack.actions)} action servers, {len(stack.rasa)} Rasa servers, "
            "nginx, the analytics consumer and the web app…"
        )
        prod.start_stack(stack, echo=echo)
        memory = prod.memory_mb(stack)
        echo(f"Ready in {time.monotonic() - t_start:.0f} s; memory (RSS, MB):")
        for name, mb in memory.items():
            echo(f"  {name:<24} {mb:7.0f}")
        echo(f"  {'total':<24} {sum(memory.values()):7.0f}")
        url = f"http://{settings.host}:{settings.web_port}/"
        print(
            f"\n  Tailor (production profile) is running: open {url}\n"
            f"  Rasa and the action servers behind nginx at {settings.rasa_url}\n"
            "  (Ctrl-C to stop)\n",
            flush=True,
        )
        return _serve(stack.services, url, args)

    return _until_stopped(start_and_serve, stack.stop)


def cmd_analytics(args: argparse.Namespace) -> int:
    """Store Rasa's conversation events from RabbitMQ in the database (``conversation_events``),
    each once; runs until Ctrl-C (the production profile starts it for you)."""
    from tailor.analytics.consumer import main as consume
    from tailor.runtime import production as prod

    settings = _settings(args)
    if args.queue:
        settings = settings.replace(events_queue=args.queue)
    if args.backfill:
        from tailor.analytics.backfill import backfill_from_tracker
        from tailor.analytics.consumer import consumer_for

        try:
            prod.check_postgres(settings.postgres_url)
        except prod.ServiceUnavailable as exc:
            raise CliError(str(exc)) from exc
        done = backfill_from_tracker(
            consumer_for(settings).engine, prod.tracker_database_url(settings)
        )
        print(f"Backfilled {done.inserted} events ({done.duplicates} already stored).")
        return 0
    try:
        prod.check_rabbitmq(settings.rabbitmq_url)
    except prod.ServiceUnavailable as exc:
        raise CliError(str(exc)) from exc
    return consume(settings=settings)


def ensure_segments(settings: Settings) -> None:
    """Fit the four segmentations once for a database that has purchases but no model yet."""
    from tailor.profiles.segments import fit_all_segments, has_segments
    from tailor.store import make_session_factory

    factory = make_session_factory(settings.database_url)
    if has_segments(factory):
        return
    try:
        report = fit_all_segments(factory, seed=settings.seed)
    except ValueError as exc:  # no purchases yet: nothing to learn segments from
        echo(f"Segments: not fitted ({exc}).")
        return
    sizes = ", ".join(f"{k} {v}" for k, v in sorted(report.behavioural.sizes.items()))
    echo(f"Segments: behavioural model v{report.behavioural.version} fitted ({sizes}).")


def ensure_scores(settings: Settings, refit: bool = False) -> None:
    """Fit the churn and restock predictors (and store every customer's scores) when none
    are stored yet, or always with ``refit``; a history too short to learn from is reported."""
    from datetime import UTC, datetime

    from tailor.profiles.predict import CHURN_KIND, fit_scores
    from tailor.store import make_session_factory
    from tailor.store.segments import latest_segment_model

    factory = make_session_factory(settings.database_url)
    with factory() as session:
        if not refit and latest_segment_model(session, CHURN_KIND) is not None:
            return
    try:
        with factory.begin() as session:
            report = fit_scores(session, datetime.now(UTC), progress=False)
    except ValueError as exc:
        echo(f"Predictive scores: not fitted ({exc}).")
        return
    echo(report.render())


def cmd_segments(args: argparse.Namespace) -> int:
    """Refit behavioural segments (k-means on RFM), reassign the demographic, geographic and
    psychographic segments, and print segment sizes and centroids."""
    from tailor.profiles.segments import fit_all_segments
    from tailor.store import make_session_factory

    settings = _settings(args)
    factory = make_session_factory(settings.database_url)
    try:
        report = fit_all_segments(
            factory, seed=args.seed if args.seed is not None else settings.seed
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(report.render())
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predictive scores: `fit` the churn and restock models and store every customer's
    scores; `evaluate` both on a time split against baselines (writes docs/predictive.md);
    `show` one customer's churn risk and restocks due."""
    from datetime import UTC, datetime

    from tailor.profiles import predict
    from tailor.store import make_session_factory
    from tailor.store.profiles import customer_by_external_id

    settings = _settings(args)
    factory = make_session_factory(settings.database_url)
    now = datetime.now(UTC)
    try:
        if args.action == "fit":
            with factory.begin() as session:
                report = predict.fit_scores(session, now, progress=True, horizon_days=args.horizon)
            print(report.render())
            return 0
        if args.action == "evaluate":
            with factory() as session:
                cutoff = (
                    datetime.fromisoformat(args.cutoff).replace(tzinfo=UTC)
                    if args.cutoff
                    else predict.default_cutoff(session, args.horizon)
                )
                result = predict.evaluate(session, cutoff, args.horizon)
            table = result.markdown()
            print(table)
            out = Path(args.out) if args.out else PROJECT_ROOT / "docs" / "predictive.md"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(predict.report_document(result, table), encoding="utf-8")
            echo(f"Wrote {out}")
            return 0
        if not args.customer:
            raise CliError("show needs the customer's external id: tailor predict show cust-0001")
        with factory() as session:
            customer = customer_by_external_id(session, args.customer)
            if customer is None:
                raise CliError(f"no customer with external id {args.customer!r}")
            seen = predict.outlook(session, customer.id, now, horizon_days=args.days)
        if seen is None:
            raise CliError(
                "no predictive models fitted (or the customer opted out): run `tailor predict fit`"
            )
        print(json.dumps(seen.to_json(), indent=2))
        return 0
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def cmd_profile(args: argparse.Namespace) -> int:
    """Show what Tailor keeps about a customer, or link a messaging platform's user id to them
    (do this only after the store verified that the account belongs to the customer)."""
    from tailor.profiles.observer import PLATFORM_CHANNELS
    from tailor.profiles.summary import profile_summary
    from tailor.store import make_session_factory
    from tailor.store.profiles import customer_by_external_id, link_channel_user

    settings = _settings(args)
    factory = make_session_factory(settings.database_url)
    if args.action == "show":
        with factory() as session:
            summary = profile_summary(session, args.customer)
        if summary is None:
            raise CliError(f"no customer with external id {args.customer!r}")
        print(json.dumps(summary.to_json(), indent=2) if args.json else summary.render())
        return 0
    if not args.channel or not args.user_id:
        raise CliError("link needs --channel and --user-id")
    if args.channel not in PLATFORM_CHANNELS:
        raise CliError(
            f"unknown channel {args.channel!r}; one of {', '.join(sorted(PLATFORM_CHANNELS))}"
        )
    with factory.begin() as session:
        customer = customer_by_external_id(session, args.customer)
        if customer is None:
            raise CliError(f"no customer with external id {args.customer!r}")
        link_channel_user(session, args.channel, args.user_id, customer.id)
    print(f"Linked {args.channel} user {args.user_id} to {args.customer}.")
    return 0


def cmd_triggers(args: argparse.Namespace) -> int:
    """Behavioural triggers (triggers.toml, TAILOR_TRIGGERS_FILE): list the rules; run them for
    every customer now (outbound messages where customers opted in; --dry-run sends and logs
    nothing); report each rule's firings, clicks, carts and purchases; record a customer's
    opt-in (or --off) to marketing messages on a linked messaging account."""
    from datetime import UTC, datetime, timedelta

    from tailor.marketing import load_trigger_config
    from tailor.marketing.rules import TriggerConfigError

    settings = _settings(args)
    try:
        config = load_trigger_config(settings.triggers_file)
    except TriggerConfigError as exc:
        raise CliError(str(exc)) from exc
    if args.action == "list":
        print(f"{settings.triggers_file}: {len(config.rules)} rule(s)")
        for rule in config.rules:
            print("  " + rule.describe())
        return 0
    from tailor.store import make_session_factory

    if args.action == "report":
        from tailor.marketing import format_performance, trigger_performance

        factory = make_session_factory(settings.database_url)
        since = datetime.now(UTC) - timedelta(days=args.days)
        with factory() as session:
            rows = trigger_performance(session, since, config.attribution_days)
        if args.json:
            print(json.dumps([r.to_json() for r in rows], indent=2))
        else:
            print(f"Triggers since {since:%Y-%m-%d} (attribution {config.attribution_days:g} days)")
            print(format_performance(rows))
        return 0
    if args.action == "opt-in":
        from tailor.store.marketing import set_marketing_opt_in
        from tailor.store.profiles import customer_by_external_id

        if not args.customer or not args.channel:
            raise CliError("opt-in needs CUSTOMER and --channel")
        factory = make_session_factory(settings.database_url)
        with factory.begin() as session:
            customer = customer_by_external_id(session, args.customer)
            if customer is None:
                raise CliError(f"no customer with external id {args.customer!r}")
            try:
                set_marketing_opt_in(session, customer.id, args.channel, not args.off)
            except LookupError as exc:
                raise CliError(str(exc)) from exc
        state = "opted out of" if args.off else "opted in to"
        print(f"{args.customer} {state} marketing messages on {args.channel}.")
        return 0
    from collections import Counter

    from tailor.marketing import TriggerEngine
    from tailor.marketing.outbound import senders_from_env
    from tailor.recommend.service import Recommender

    rec = Recommender.from_settings(settings, progress=True)
    engine = TriggerEngine(config, rec, senders_from_env())

    def progress(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            print(f"\r  customers {done}/{total}", end="\n" if done == total else "", flush=True)

    firings = engine.run(dry_run=args.dry_run, progress=progress)
    for f in firings:
        if f.status in ("sent", "would send") or f.status.startswith("failed"):
            print(f"  {f.rule} → customer {f.customer_id} on {f.channel}: {f.status} {f.products}")
    counts = Counter((f.rule, f.status) for f in firings)
    for (name, status), n in sorted(counts.items()):
        print(f"{name}: {n} {status}")
    if not firings:
        print("No rule applies to any customer now.")
    return 0


def cmd_agent(args: argparse.Namespace) -> int:
    """Add a support agent for the assist panel (/agent), or set an agent's new password.

    The password is read from the terminal twice (or from TAILOR_AGENT_PASSWORD, for scripts).
    """
    import getpass

    from tailor.store import make_session_factory
    from tailor.store.agents import agent_by_username, create_agent, set_password

    settings = _settings(args)
    password = os.environ.get("TAILOR_AGENT_PASSWORD", "")
    if not password:
        password = getpass.getpass(f"Password for {args.username}: ")
        if getpass.getpass("Repeat it: ") != password:
            raise CliError("the two passwords differ")
    factory = make_session_factory(settings.database_url)
    try:
        with factory.begin() as session:
            if args.action == "add":
                create_agent(session, args.username, password, role=args.role)
            else:
                agent = agent_by_username(session, args.username)
                if agent is None:
                    raise CliError(f"no agent named {args.username!r}")
                set_password(session, agent, password)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    done = f"Added {args.role}" if args.action == "add" else "New password for"
    print(f"{done} {args.username}; they sign in at /agent.")
    return 0


def cmd_sentiment(args: argparse.Namespace) -> int:
    """Train the sentiment adapter (LoRA on MiniLM + 3-class head), score some texts, or score
    the catalog's reviews (those without sentiment yet; all of them with --rescore)."""
    if args.action == "reviews":
        print(score_review_sentiment(_settings(args), args.rescore, args.model).render())
        return 0
    if args.action == "score":
        from tailor.sentiment import SentimentModel

        if not args.texts:
            raise CliError("give the texts to score, e.g. tailor sentiment score 'too pricey'")
        model = SentimentModel.load(args.model)
        for text, result in zip(args.texts, model(list(args.texts)), strict=True):
            print(f"{result.label:8} {result.score:+.2f}  {text}")
        return 0

    import logging

    from tailor.sentiment import SHIPPED_WEIGHTS, train
    from tailor.sentiment.data import shared_data_dir

    data = Path(args.data) if args.data else shared_data_dir() / "sentiment"
    if not data.exists():
        raise CliError(f"No SST-2 data at {data}; pass --data (the folder holding sst2/ and uci/)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = train(
        args.output or SHIPPED_WEIGHTS,
        data,
        args.shopping,
        args.encoder or _settings(args).embedding_model,
        max_sst2=args.max_sst2,
        epochs=args.epochs,
        seed=args.seed,
        lr=args.lr,
        threads=args.threads,
    )
    print(json.dumps(report.as_dict(), indent=2))
    return 0


def cmd_privacy(args: argparse.Namespace) -> int:
    """Privacy requests and retention.

    `retention`: delete events, conversations (Rasa's tracker store) and their analytics
    copies older than --days (default TAILOR_EVENT_RETENTION_DAYS, 730) and de-identify the
    events of shoppers who turned personalisation off; --dry-run only counts.
    `export` / `forget`: a request the store received and verified itself (e.g. by e-mail),
    for --customer EXTERNAL_ID (all their conversations) or --sender CONVERSATION_ID.
    """
    from tailor.privacy import (
        ConversationOwned,
        Subject,
        TrackerStore,
        apply_retention,
        export_data,
        forget,
    )
    from tailor.store import make_session_factory
    from tailor.store.profiles import customer_by_external_id

    settings = _settings(args)
    factory = make_session_factory(settings.database_url)
    tracker = TrackerStore.from_settings(settings)
    if args.action == "retention":
        days = args.days if args.days is not None else settings.event_retention_days
        try:
            with factory.begin() as session:
                report = apply_retention(session, tracker, days, dry_run=args.dry_run)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        print(report.render())
        return 0
    if bool(args.customer) == bool(args.sender):
        raise CliError("give exactly one of --customer EXTERNAL_ID or --sender CONVERSATION_ID")
    with factory.begin() as session:
        if args.customer:
            customer = customer_by_external_id(session, args.customer)
            if customer is None:
                raise CliError(f"No customer with external id {args.customer!r}")
            subject = Subject(sender_id=None, customer_id=customer.id)
        else:
            subject = Subject(sender_id=args.sender)
        try:
            if args.action == "export":
                print(json.dumps(export_data(session, subject, tracker), indent=2, default=str))
            else:
                print(forget(session, subject, tracker).render())
        except ConversationOwned as exc:
            raise CliError(f"{exc} Use --customer.") from exc
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Chat with a running Tailor in the terminal (REST channel)."""
    import httpx

    settings = _settings(args)
    url = (args.url or settings.rasa_url).rstrip("/") + "/webhooks/rest/webhook"
    sender = args.sender or f"cli-{uuid.uuid4().hex[:12]}"
    print("Chatting with Tailor — type 'quit' to leave.")
    while True:
        try:
            text = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text.lower() in {"quit", "exit"}:
            return 0
        if not text:
            continue
        try:
            resp = httpx.post(url, json={"sender": sender, "message": text}, timeout=60)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            print(f"(cannot reach Tailor at {url}: {exc}; is `tailor run` running?)")
            continue
        for msg in resp.json():
            if msg.get("text"):
                print(f"bot> {msg['text']}")
            custom = msg.get("custom") or {}
            for i, p in enumerate(custom.get("products") or [], 1):
                rating = f" ★{p['rating']:.1f}" if p.get("rating") is not None else ""
                print(f"     {i}. {p['title']} ({p.get('brand') or '-'}) {p['price_text']}{rating}")
                print(f"        {p['reason']}")
            if msg.get("buttons"):
                print("     [" + "] [".join(b["title"] for b in msg["buttons"]) + "]")


def _prepared_bot(settings: Settings) -> Path:
    """The Rasa venv, catalog, review scores, segments, index, lookups and a trained model
    (each only when missing or stale); returns the model path."""
    from tailor.runtime.rasa import RasaNotInstalled, train

    try:
        install_rasa_venv(settings)
        _ensure_catalog(settings)
        echo(score_review_sentiment(settings).render())
        prepare_sentiment(settings)
        ensure_segments(settings)
        ensure_scores(settings)
        build_index(settings)
        write_lookups_for(settings)
        model, _ = train(settings, echo=echo)
    except RasaNotInstalled as exc:
        raise CliError(str(exc)) from exc
    return model


def cmd_eval(args: argparse.Namespace) -> int:
    """Measure quality on real data; see docs/quality.md.

    `retrieval`: lexical (BM25), dense and hybrid search on a labelled dataset
    (`--dataset abt-buy --data ../shared/data/retrieval/abt_buy`; `--dataset folder` reads
    corpus.csv, queries.csv and qrels.csv, docs/retrieval-eval.md).
    `nlu`: intent/entity cross-validation, constraint extraction, and out-of-scope vs
    shopping requests through the running bot (`--data ../shared/data`).
    `sentiment`: SST-2 dev, UCI sentences, neutral calibration (`--data ../shared/data`).
    `all`: everything, written to docs/quality.md with plots (`--data ../shared/data`).
    """
    if args.what == "retrieval":
        return _eval_retrieval(args)
    from tailor.evaluation.report import QualityRun, data_files, write_report

    settings = _settings(args)
    try:
        files = data_files(args.data)
    except FileNotFoundError as exc:
        raise CliError(f"{exc} (give the shared data folder with --data)") from exc
    out = Path(args.out) if args.out else PROJECT_ROOT / "docs" / "quality.md"
    plots = out.parent / "quality" if args.what == "all" else Path(settings.home) / "eval"
    run = QualityRun(settings, files, plots, echo)
    started = time.monotonic()
    if args.what in ("nlu", "all"):
        model = _prepared_bot(settings)
        from tailor.recommend.service import Recommender

        recommender = Recommender.from_settings(settings)
        run.timed("Understanding: intents and entities", run.nlu)
        run.timed("Understanding: constraints", lambda: run.understanding(recommender))
        run.timed("Understanding: out of scope vs shopping", lambda: run.scope(model))
    if args.what in ("sentiment", "all"):
        run.timed("Sentiment", run.sentiment)
    if args.what == "all":
        run.timed("Retrieval", run.retrieval)
        order = ["Retrieval"] + [n for n, _ in run.sections if n != "Retrieval"]
        run.sections.sort(key=lambda item: order.index(item[0]))
        command = f"tailor eval all --data {args.data}"
        path = write_report(run, out, command, time.monotonic() - started)
        echo(f"Wrote {path} in {(time.monotonic() - started) / 60:.1f} min.")
        return 0
    for name, body in run.sections:
        print(f"\n## {name}\n\n{body}")
    echo(f"Done in {(time.monotonic() - started) / 60:.1f} min.")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Turn latency of the full bot against a floor (the same Rasa model with no-op actions).

    Starts both over copies of the database, drives them with the same scripted
    conversations at each concurrency, measures one long conversation, optionally profiles
    where the CPU goes (py-spy), and writes docs/bench/turns.md and docs/bench/latency.png.
    """
    from tailor.bench.harness import report, run_bench
    from tailor.runtime.secrets import ensure_customer_token_secret

    if args.what == "soak":
        return _bench_soak(args)
    if any(c < 1 for c in args.concurrency):
        raise CliError(f"--concurrency values must be >= 1, got {args.concurrency}")
    settings = ensure_customer_token_secret(_settings(args))
    if args.cold_caches:
        # the scripts repeat their texts: without this, most query vectors and sentiment
        # scores come from the per-text caches
        settings = settings.replace(text_caches=False)
    model = _prepared_bot(settings)
    profile_dir = Path(settings.home) / "bench-profile" if args.profile else None
    result = run_bench(
        settings,
        model,
        levels=sorted(set(args.concurrency)),
        min_conversations=args.conversations,
        long_turns=args.long,
        profile_dir=profile_dir,
        echo=echo,
    )
    out = Path(args.out) if args.out else PROJECT_ROOT / "docs" / "bench"
    command = "tailor bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "tailor bench"
    path = report(result, out, command.strip())
    for line in result.verdicts():
        echo(line)
    echo(f"Wrote {path} in {result.seconds / 60:.1f} min.")
    return 0


def _bench_soak(args: argparse.Namespace) -> int:
    """``tailor bench soak``: concurrent conversations through the whole stack for a bounded
    time; errors, persisted events and memory over time go to docs/reliability.md."""
    from tailor.bench.harness import _machine
    from tailor.bench.soak import report_lines, run_soak, write_report
    from tailor.runtime import processes as P
    from tailor.runtime.secrets import ensure_customer_token_secret

    if args.minutes <= 0 or args.minutes > 24 * 60:
        raise CliError(f"--minutes must be within (0, 1440], got {args.minutes}")
    if args.shoppers < 1:
        raise CliError(f"--shoppers must be >= 1, got {args.shoppers}")
    settings = ensure_customer_token_secret(_settings(args))
    model = _prepared_bot(settings)
    stop_on_sigterm()
    try:
        result = run_soak(settings, model, args.minutes, args.shoppers, echo=echo)
    except P.ServiceError as exc:
        raise CliError(str(exc)) from exc
    command = "tailor bench " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "tailor bench"
    out = Path(args.out) if args.out else PROJECT_ROOT / "docs" / "reliability.md"
    path = write_report(out, report_lines(result, command.strip(), _machine()))
    for line in result.verdicts():
        echo(line)
    echo(f"Wrote {path}.")
    return 0 if result.errors == 0 and result.sent else 1


def cmd_audit(args: argparse.Namespace) -> int:
    """Bias audit: exposure (price levels, coverage, department mix) and suggestion quality
    by age band, gender and country, with disparities above a threshold flagged.

    Writes a markdown report (default docs/audit.md) and the same as JSON next to it.
    Exit code 0: no flag; 1: flags (under the configured protected-attribute policy); 2: error.
    """
    from dataclasses import replace as dc_replace

    from tailor.evaluation.audit import render_markdown, run_audit
    from tailor.recommend.service import Recommender
    from tailor.recommend.signals import ProtectedPolicy

    settings = _settings(args)
    try:
        policy = ProtectedPolicy.from_settings(settings)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    policies = [policy]
    if args.compare_protected:
        policies.append(dc_replace(policy, use_in_ranking=not policy.use_in_ranking))
    if not Path(str(settings.index_dir)).exists():
        raise CliError(f"no index at {settings.index_dir}: run `tailor demo` and `tailor index`")
    started = time.monotonic()
    try:
        recommender = Recommender.from_settings(settings, progress=True)
        report = run_audit(
            recommender,
            policies,
            customers=args.customers,
            threshold=args.threshold,
            departments=args.departments,
            min_group=args.min_group,
            n_boot=args.boot,
            seed=args.seed,
            quality=not args.no_quality,
            progress=True,
            log=echo,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    except Exception as exc:  # exit code 1 means "flags": any other failure must exit 2
        import traceback

        traceback.print_exc()
        raise CliError(f"the audit failed: {exc!r}") from exc
    command = ["tailor audit"]
    if args.customers:
        command.append(f"--customers {args.customers}")
    if args.threshold != 0.2:
        command.append(f"--threshold {args.threshold}")
    if args.compare_protected:
        command.append("--compare-protected")
    report.command = " ".join(command)
    out = Path(args.out) if args.out else PROJECT_ROOT / "docs" / "audit.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_markdown(report), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    flags = len(report.runs[0].flags)
    echo(
        f"Wrote {out} and {out.with_suffix('.json').name} in "
        f"{(time.monotonic() - started) / 60:.1f} min: {flags} flag(s)."
    )
    return 1 if report.flagged else 0


def _eval_retrieval(args: argparse.Namespace) -> int:
    from tailor.evaluation.retrieval import load_dataset, run_retrieval_eval
    from tailor.retrieval.engine import embedder_for

    settings = _settings(args)
    data = Path(args.data)
    if not data.is_dir():
        raise CliError(f"No such folder: {data}")
    try:
        dataset = load_dataset(args.dataset, data)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    embedder = embedder_for(settings)
    report = run_retrieval_eval(dataset, embedder, k=args.k, progress=True)
    table = report.markdown()
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n", encoding="utf-8")
        print(f"Wrote {args.out}")
    return 0


# -- parser ----------------------------------------------------------------------------
def cmd_experiments(args: argparse.Namespace) -> int:
    """A/B experiments on the ranking (experiments.toml): list them, simulate traffic from the
    demo customers through the real recommender, or report per arm and segment with
    confidence intervals and significance tests (docs/experiments.md)."""
    from datetime import timedelta

    from tailor.experiments import ExperimentError, find_experiment, load_experiments

    settings = _settings(args)
    try:
        experiments = load_experiments(settings.experiments_file)
        if args.action == "list":
            if not experiments:
                print(f"No experiments defined ({settings.experiments_file}).")
            for e in experiments:
                arms = ", ".join(
                    f"{a.name} ({a.traffic:g}"
                    + "".join(f", {k}={v:g}" for k, v in a.weights.items())
                    + ")"
                    for a in e.arms
                )
                print(
                    f"{e.name}: {e.start:%Y-%m-%d} - {e.end:%Y-%m-%d}, control {e.control}; "
                    f"arms {arms}; who: {e.describe_segments()}"
                )
            return 0
        if not args.name:
            raise CliError(f"name the experiment: tailor experiments {args.action} NAME")
        experiment = find_experiment(experiments, args.name)
    except ExperimentError as exc:
        raise CliError(str(exc)) from exc
    if settings.experiment_attribution_hours <= 0:
        raise CliError(
            "experiment_attribution_hours (TAILOR_EXPERIMENT_ATTRIBUTION_HOURS) must be "
            f"positive, got {settings.experiment_attribution_hours}"
        )
    window = timedelta(hours=settings.experiment_attribution_hours)
    if args.action == "simulate":
        from tailor.experiments.simulate import simulate
        from tailor.recommend.service import Recommender

        echo("Opening the catalog, index and models …")
        rec = Recommender.from_settings(settings, progress=True)
        try:
            summary = simulate(
                rec,
                experiment,
                customers=args.customers,
                days=args.days,
                seed=args.seed if args.seed is not None else settings.seed,
                progress=True,
            )
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        print(summary.render())
        return 0
    from tailor.experiments.report import build_report, write_report
    from tailor.store import make_session_factory

    report = build_report(
        make_session_factory(settings.database_url), experiment, window, args.segment_kind
    )
    print(report.markdown())
    out = Path(args.out) if args.out else settings.home / "experiments"
    md, png = write_report(report, out)
    echo(f"Wrote {md} and {png}.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all subcommands."""
    parser = argparse.ArgumentParser(prog="tailor", description=__doc__)
    parser.add_argument("--home", type=Path, help="data folder (default ./var or TAILOR_HOME)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default SQLite in the data folder)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help_: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=func.__doc__)
        p.set_defaults(func=func)
        return p

    add("install", cmd_install, "create the Rasa environment if missing, then check")
    add("check", cmd_check, "show what is installed and built")
    p = add("demo", cmd_demo, "generate the demo catalog and customers")
    p.add_argument("--products", type=int, help="number of products (default 10000)")
    p.add_argument("--customers", type=int, help="number of customers (default 500)")
    p.add_argument("--seed", type=int, help="random seed (default 42)")
    p = add("import", cmd_import, "import a catalog file")
    p.add_argument("format", choices=["dummyjson", "csv"])
    p.add_argument("path")
    p.add_argument(
        "--map", action="append", metavar="FIELD=COLUMN", help="CSV column mapping (repeatable)"
    )
    p = add("index", cmd_index, "build or update the vector index")
    p.add_argument("--rebuild", action="store_true", help="rebuild from scratch")
    add("lookups", cmd_lookups, "generate NLU lookup tables from the catalog")
    p = add("train", cmd_train, "train the Rasa model if its inputs changed")
    p.add_argument("--force", action="store_true", help="train even if a cached model exists")
    p = add("run", cmd_run, "build what is missing and serve the bot at a local web page")
    for flag in ("--rasa-port", "--action-port", "--web-port"):
        p.add_argument(flag, type=int)
    p.add_argument("--products", type=int, help="demo catalog size when building it")
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.add_argument("--exit-when-ready", action="store_true", help=argparse.SUPPRESS)
    p.add_argument(
        "--profile",
        choices=["embedded", "production"],
        help="embedded (default: SQLite, one of each service) or production (PostgreSQL, "
        "Redis, RabbitMQ, replicas behind nginx); or TAILOR_PROFILE",
    )
    p = add("analytics", cmd_analytics, "store Rasa's conversation events from RabbitMQ")
    p.add_argument("--queue", help="RabbitMQ queue (default tailor_events, TAILOR_EVENTS_QUEUE)")
    p.add_argument(
        "--backfill",
        action="store_true",
        help="instead: copy the tracker store's events the table lacks, then exit",
    )
    p = add("segments", cmd_segments, "segment customers: `tailor segments fit`")
    p.add_argument("action", choices=["fit"], help="fit: refit and reassign, then print a table")
    p.add_argument("--seed", type=int, help="random seed (default 42)")
    p = add("predict", cmd_predict, "churn risk and restock predictions: fit, evaluate, show")
    p.add_argument("action", choices=["fit", "evaluate", "show"])
    p.add_argument("customer", nargs="?", help="with show: the customer's external id")
    p.add_argument("--cutoff", help="with evaluate: YYYY-MM-DD (default: last purchase - horizon)")
    p.add_argument("--horizon", type=int, default=90, help="churn horizon in days (default 90)")
    p.add_argument("--days", type=int, default=7, help="with show: restocks due within N days")
    p.add_argument("--out", help="with evaluate: the report (default docs/predictive.md)")
    p = add("sentiment", cmd_sentiment, "train the sentiment model, score texts or reviews")
    p.add_argument("action", choices=["train", "score", "reviews"])
    p.add_argument("texts", nargs="*", help="with score: the texts to score")
    p.add_argument(
        "--model", help="with score/reviews: model folder (default: the shipped adapter)"
    )
    p.add_argument(
        "--rescore", action="store_true", help="with reviews: rescore every review, not just new"
    )
    p.add_argument("--output", help="with train: adapter folder (default: the shipped weights)")
    p.add_argument("--data", help="folder with sst2/ and uci/ (default ../shared/data/sentiment)")
    p.add_argument("--shopping", help="shopping-reaction .tsv (default: the shipped set)")
    p.add_argument("--encoder", help="encoder folder (default: the configured embedding model)")
    p.add_argument("--max-sst2", type=int, default=40_000, help="SST-2 sentences to sample")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest here)")
    p = add("profile", cmd_profile, "show a customer's profile, or link a messaging account")
    p.add_argument("action", choices=["show", "link"], help="show | link")
    p.add_argument("customer", help="the customer's external id (e.g. cust-0001)")
    p.add_argument("--json", action="store_true", help="with show: print JSON")
    p.add_argument("--channel", help="with link: the messaging channel (e.g. telegram)")
    p.add_argument("--user-id", help="with link: the platform's user id on that channel")
    p = add("privacy", cmd_privacy, "retention of events; export or forget a shopper's data")
    p.add_argument("action", choices=["retention", "export", "forget"])
    p.add_argument("--days", type=int, help="with retention: keep this many days (default 730)")
    p.add_argument("--dry-run", action="store_true", help="with retention: only count")
    p.add_argument("--customer", help="with export/forget: the customer's external id")
    p.add_argument("--sender", help="with export/forget: an anonymous conversation id")
    p = add("triggers", cmd_triggers, "behavioural triggers: list, run, report, opt-in")
    p.add_argument("action", choices=["list", "run", "report", "opt-in"])
    p.add_argument("customer", nargs="?", help="with opt-in: the customer's external id")
    p.add_argument("--dry-run", action="store_true", help="with run: send and log nothing")
    p.add_argument("--days", type=int, default=30, help="with report: period (default 30)")
    p.add_argument("--json", action="store_true", help="with report: print JSON")
    p.add_argument("--channel", help="with opt-in: the messaging channel (e.g. telegram)")
    p.add_argument("--off", action="store_true", help="with opt-in: record an opt-out")
    p = add("agent", cmd_agent, "add a support agent for the assist panel, or reset a password")
    p.add_argument("action", choices=["add", "passwd"], help="add | passwd")
    p.add_argument("username", help="3-64 letters, digits, _ . @ -")
    p.add_argument(
        "--role",
        choices=["agent", "admin"],
        default="agent",
        help="agent: the assist panel; admin: also the catalog API /api/admin (with add)",
    )
    p = add("chat", cmd_chat, "chat with a running Tailor in the terminal")
    p.add_argument("--url", help="Rasa server URL (default from settings)")
    p.add_argument("--sender", help="conversation id (default: a new one)")
    p = add("audit", cmd_audit, "bias audit: exposure and quality by demographic group")
    p.add_argument("--out", help="markdown report (default docs/audit.md; JSON next to it)")
    p.add_argument(
        "--threshold", type=float, default=0.2, help="relative difference to flag (default 0.2)"
    )
    p.add_argument("--customers", type=int, help="audit a seeded sample of N customers")
    p.add_argument(
        "--compare-protected",
        action="store_true",
        help="run twice: protected attributes excluded (the default) and included",
    )
    p.add_argument(
        "--departments", type=int, help="ask only the N largest departments (default: all)"
    )
    p.add_argument("--min-group", type=int, default=10, help="never flag smaller groups")
    p.add_argument("--boot", type=int, default=1000, help="bootstrap/permutation replicates")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--no-quality", action="store_true", help="skip the held-out evaluation")
    p = add("eval", cmd_eval, "measure retrieval, understanding and sentiment on real data")
    p.add_argument(
        "what",
        choices=["retrieval", "nlu", "sentiment", "all"],
        help="retrieval: Recall@k, MRR, NDCG@k; nlu: intents, entities, out of scope; "
        "sentiment: accuracy, macro-F1, calibration; all: docs/quality.md",
    )
    p.add_argument("--dataset", default="folder", choices=["folder", "abt-buy"], help="(retrieval)")
    p.add_argument(
        "--data",
        required=True,
        help="the dataset folder (retrieval) or the shared data folder (nlu, sentiment, all)",
    )
    p.add_argument("--k", type=int, default=10, help="cut-off for Recall@k and NDCG@k")
    p.add_argument(
        "--out", help="retrieval: also write the table here; all: the report (docs/quality.md)"
    )
    p = add(
        "bench",
        cmd_bench,
        "turn latency of the full bot against a no-op floor; `bench soak`: a bounded soak",
    )
    p.add_argument(
        "what",
        nargs="?",
        choices=["turns", "soak"],
        default="turns",
        help="turns (default): latency against the floor; soak: errors, persisted events and "
        "memory over a long run (docs/reliability.md)",
    )
    p.add_argument("--minutes", type=float, default=10.0, help="soak: how long (default 10)")
    p.add_argument("--shoppers", type=int, default=8, help="soak: concurrent shoppers (default 8)")
    p.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 8, 32], help="concurrent shoppers"
    )
    p.add_argument(
        "--conversations", type=int, default=12, help="conversations per level (at least)"
    )
    p.add_argument("--long", type=int, default=50, help="turns of the long conversations (0: skip)")
    p.add_argument("--profile", action="store_true", help="also profile by stage with py-spy")
    p.add_argument(
        "--cold-caches",
        action="store_true",
        help="embed and score every message as novel text (no per-text caches; the scripts "
        "repeat their texts)",
    )
    p.add_argument(
        "--out", help="report folder (default docs/bench); soak: file (docs/reliability.md)"
    )
    p = add("experiments", cmd_experiments, "A/B experiments: list, simulate, report")
    p.add_argument("action", choices=["list", "simulate", "report"])
    p.add_argument("name", nargs="?", help="the experiment (simulate, report)")
    p.add_argument("--customers", type=int, default=200, help="simulate: demo customers")
    p.add_argument("--days", type=int, default=14, help="simulate: days from the start")
    p.add_argument("--seed", type=int, help="simulate: random seed (default 42)")
    p.add_argument("--out", help="report: folder for NAME.md and NAME.png (var/experiments)")
    p.add_argument(
        "--segment-kind",
        default="rfm",
        choices=["rfm", "demographic", "geographic", "psychographic"],
        help="report: segments of the per-segment table (default rfm, the behavioural ones)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tailor`` console script."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        echo(f"error: {exc}")
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
