"""The production profile on one machine: PostgreSQL, Redis, RabbitMQ, replicas behind nginx.

``tailor run --profile production`` (or ``TAILOR_PROFILE=production``) starts:

- ``rasa_replicas`` Rasa servers sharing one SQL tracker store on PostgreSQL (the database
  ``<catalog database>_tracker``), a Redis lock store (so two replicas never process messages
  of one conversation at the same time) and a pika event broker publishing every event to
  the durable RabbitMQ queue ``events_queue``;
- ``action_replicas`` action servers reading the catalog and customers from PostgreSQL;
- nginx (Debian's package) balancing both round-robin on ``balancer_port``: ``/`` goes to the
  Rasa servers, ``/actions/`` to the action servers;
- the analytics consumer (``tailor analytics``), writing the events to ``conversation_events``;
- the web app, talking to Rasa through the balancer.

The pure parts (:func:`endpoints_yaml`, :func:`nginx_conf`) are unit-tested; the rest runs the
real services (``tests/production``).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tailor.analytics.events import exchange_name
from tailor.config import Settings
from tailor.runtime import processes as P

#: Seconds a Rasa replica may hold a conversation's lock (Rasa's ``TICKET_LOCK_LIFETIME``).
#: A replica killed while holding it blocks that conversation at most this long; a message
#: must be processed well within it (ours take well under a second once warm).
LOCK_LIFETIME_SECONDS = 20
#: Rasa's Redis lock store with atomic ticket operations (several replicas share it); the
#: module lives in ``tailor.runtime.rasa.RASA_PLUGINS``, on every Rasa server's ``PYTHONPATH``.
LOCK_STORE_CLASS = "tailor_lock_store.AtomicRedisLockStore"
#: The SQL tracker store of the embedded profile too (``tailor.runtime.rasa.write_endpoints``):
#: it starts a new session in place past ``tracker_max_session_events`` events.
TRACKER_STORE_CLASS = "tailor_tracker_store.CompactingSQLTrackerStore"
#: Where nginx lives on Debian (``apt-get install nginx``).
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


class ServiceUnavailable(RuntimeError):
    """A backing service (PostgreSQL, Redis, RabbitMQ, nginx) is missing or unreachable; the
    message names the service and the setting to fix."""


# -- settings ---------------------------------------------------------------------------
def production_settings(settings: Settings) -> Settings:
    """Settings of a production run: the profile set, and Rasa and the action server reached
    through the load balancer unless their URLs were given explicitly."""
    given = settings._given
    changes: dict[str, object] = {"profile": "production"}
    base = f"http://{settings.host}:{settings.balancer_port}"
    if "rasa_url" not in given:
        changes["rasa_url"] = base
    if "action_url" not in given:
        changes["action_url"] = f"{base}/actions/webhook"
    return settings.replace(**changes)


def tracker_database_url(settings: Settings) -> str:
    """The SQLAlchemy URL of Rasa's tracker-store database: ``<catalog database>_tracker``."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.postgres_url)
    return url.set(database=f"{url.database}_tracker").render_as_string(hide_password=False)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


# -- pure generators ---------------------------------------------------------------------
def _yaml_str(value: object) -> str:
    """A double-quoted YAML scalar (JSON string syntax is valid YAML)."""
    import json

    return json.dumps(str(value))


def endpoints_yaml(settings: Settings, lock_prefix: str = "tailor") -> str:
    """Rasa's ``endpoints.yml`` for the production profile (pure: no I/O).

    - ``tracker_store``: SQL on PostgreSQL, database :func:`tracker_database_url`, through
      :data:`TRACKER_STORE_CLASS` (sessions kept short, as in the embedded profile);
    - ``lock_store``: Redis (``redis_url``), keys prefixed with ``lock_prefix``, through
      :data:`LOCK_STORE_CLASS` (ticket changes atomic across replicas);
    - ``event_broker``: pika to RabbitMQ (``rabbitmq_url``), publishing to the durable queue
      ``events_queue`` through a fanout exchange of its own (``<queue>.exchange``), so two
      deployments on one broker never see each other's events;
    - ``action_endpoint``: ``action_url`` (the balancer's ``/actions/webhook``).
    """
    from sqlalchemy.engine import make_url

    pg = make_url(tracker_database_url(settings))
    redis = urlsplit(settings.redis_url)
    amqp = urlsplit(settings.rabbitmq_url)
    if not lock_prefix.isalnum():
        raise ValueError(f"the lock key prefix must be alphanumeric, got {lock_prefix!r}")
    redis_db = (redis.path or "/0").strip("/") or "0"
    vhost = amqp.path or "/%2F"
    broker_url = f"{amqp.scheme}://{amqp.hostname or '127.0.0.1'}{vhost}"
    lines = [
        "# Written by `tailor run --profile production`; edit settings, not this file.",
        "action_endpoint:",
        f"  url: {_yaml_str(settings.action_url)}",
        "tracker_store:",
        f"  type: {_yaml_str(TRACKER_STORE_CLASS)}",
        "  dialect: postgresql",
        f"  url: {_yaml_str(pg.host or '127.0.0.1')}",
        f"  port: {pg.port or 5432}",
        f"  db: {_yaml_str(pg.database)}",
    ]
    lines.append(f"  max_session_events: {int(settings.tracker_max_session_events)}")
    if pg.username:
        lines.append(f"  username: {_yaml_str(pg.username)}")
    if pg.password:
        lines.append(f"  password: {_yaml_str(pg.password)}")
    lines += [
        "lock_store:",
        f"  type: {_yaml_str(LOCK_STORE_CLASS)}",
        f"  url: {_yaml_str(redis.hostname or '127.0.0.1')}",
        f"  port: {redis.port or 6379}",
        f"  db: {int(redis_db)}",
        f"  key_prefix: {_yaml_str(lock_prefix)}",
    ]
    if redis.password:
        lines.append(f"  password: {_yaml_str(unquote(redis.password))}")
    if redis.username:
        lines.append(f"  username: {_yaml_str(unquote(redis.username))}")
    if redis.scheme == "rediss":
        lines.append("  use_ssl: true")
    lines += [
        "event_broker:",
        "  type: pika",
        f"  url: {_yaml_str(broker_url)}",
        f"  port: {amqp.port or 5672}",
        f"  username: {_yaml_str(unquote(amqp.username or 'guest'))}",
        f"  password: {_yaml_str(unquote(amqp.password or 'guest'))}",
        "  queues:",
        f"    - {_yaml_str(settings.events_queue)}",
        f"  exchange_name: {_yaml_str(exchange_name(settings.events_queue))}",
        "  raise_on_failure: false",
    ]
    return "\n".join(lines) + "\n"


def nginx_conf(
    *,
    host: str,
    listen_port: int,
    rasa_ports: Sequence[int],
    action_ports: Sequence[int],
    run_dir: Path,
    log_dir: Path,
    worker_user: str | None = None,
) -> str:
    """nginx's configuration for the balancer (pure: no I/O).

    Round-robin upstreams for the Rasa servers (``/``) and the action servers
    (``/actions/``); socket.io (``/socket.io/``, chat widgets) sticks to one Rasa server per
    client address, as its handshake and websocket need. A request that could not be sent
    to a server (refused, reset before sending, connect timeout) goes to the next one; a
    Rasa request already sent is not repeated (a user message must not be processed twice:
    the client sees a 502 and may retry), while an action call is (``non_idempotent``):
    Rasa applies an action's events
    once whichever server computed them.
    """
    if not rasa_ports or not action_ports:
        raise ValueError("nginx_conf needs at least one Rasa port and one action port")

    def upstream(name: str, ports: Sequence[int], sticky: bool = False) -> str:
        servers = "\n".join(
            f"        server {host}:{port} max_fails=1 fail_timeout=5s;" for port in ports
        )
        balance = "        hash $remote_addr consistent;\n" if sticky else ""
        return f"    upstream {name} {{\n{balance}{servers}\n        keepalive 16;\n    }}\n"

    temp = run_dir / "nginx-temp"
    user_line = f"user {worker_user};\n" if worker_user else ""
    common = (
        "            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n'
        "            proxy_set_header Host $host;\n"
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
        "            proxy_connect_timeout 2s;\n"
        "            proxy_read_timeout 300s;\n"
        "            proxy_send_timeout 60s;\n"
    )
    return (
        "# Written by `tailor run --profile production`; edit settings, not this file.\n"
        f"{user_line}"
        "worker_processes 1;\n"
        f"pid {run_dir / 'nginx.pid'};\n"
        f"error_log {log_dir / 'nginx-error.log'} warn;\n"
        "events {\n    worker_connections 1024;\n}\n"
        "http {\n"
        "    log_format upstream '$remote_addr [$time_local] \"$request\" $status '\n"
        "                        'upstream=$upstream_addr rt=$request_time';\n"
        f"    access_log {log_dir / 'nginx-access.log'} upstream;\n"
        f"    client_body_temp_path {temp / 'body'};\n"
        f"    proxy_temp_path {temp / 'proxy'};\n"
        f"    fastcgi_temp_path {temp / 'fastcgi'};\n"
        f"    uwsgi_temp_path {temp / 'uwsgi'};\n"
        f"    scgi_temp_path {temp / 'scgi'};\n"
        "    client_max_body_size 8m;\n"
        # Trackers travel to the action servers in request bodies and back from Rasa's API in
        # responses: keep both in memory, so nginx's workers (an unprivileged user when
        # started by root) never need to write a temporary file.
        "    client_body_buffer_size 8m;\n"
        "    proxy_buffer_size 64k;\n"
        "    proxy_buffers 64 64k;\n"
        "    proxy_max_temp_file_size 0;\n"
        + upstream("tailor_rasa", rasa_ports)
        + upstream("tailor_actions", action_ports)
        + upstream("tailor_rasa_sticky", rasa_ports, sticky=True)
        + "    server {\n"
        f"        listen {host}:{listen_port};\n"
        "        location = /balancer-health {\n"
        "            return 200 'ok';\n"
        "        }\n"
        "        location /actions/ {\n"
        "            proxy_pass http://tailor_actions/;\n"
        + common
        + "            proxy_next_upstream error timeout http_502 non_idempotent;\n"
        "            proxy_next_upstream_tries 3;\n"
        "        }\n"
        "        location /socket.io/ {\n"
        "            proxy_pass http://tailor_rasa_sticky;\n"
        "            proxy_http_version 1.1;\n"
        "            proxy_set_header Upgrade $http_upgrade;\n"
        '            proxy_set_header Connection "upgrade";\n'
        "            proxy_set_header Host $host;\n"
        "            proxy_read_timeout 3600s;\n"
        "        }\n"
        "        location / {\n"
        "            proxy_pass http://tailor_rasa;\n"
        + common
        + "            proxy_next_upstream error timeout;\n"
        "            proxy_next_upstream_tries 3;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


# -- backing services ---------------------------------------------------------------------
def check_backing_services(settings: Settings, timeout: float = 3.0) -> None:
    """Raise :class:`ServiceUnavailable` naming the first unreachable service and its setting."""
    check_postgres(settings.postgres_url, timeout)
    check_redis(settings.redis_url, timeout)
    check_rabbitmq(settings.rabbitmq_url, timeout)


def _maintenance_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def check_postgres(url: str, timeout: float = 3.0) -> None:
    """PostgreSQL answers at ``url`` (its server; the database may not exist yet)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(
        _maintenance_url(url), connect_args={"connect_timeout": max(1, int(timeout))}
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise ServiceUnavailable(
            f"PostgreSQL is not reachable at {_redacted(url)} (setting postgres_url, "
            f"TAILOR_POSTGRES_URL): {str(exc).splitlines()[0]}"
        ) from exc
    finally:
        engine.dispose()


def check_redis(url: str, timeout: float = 3.0) -> None:
    """Redis answers PING at ``url`` (a bare RESP exchange: no client library needed)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if parts.password:
                user = unquote(parts.username or "default")
                sock.sendall(_resp("AUTH", user, unquote(parts.password)))
                sock.recv(1024)
            sock.sendall(_resp("PING"))
            answer = sock.recv(1024)
    except OSError as exc:
        raise ServiceUnavailable(
            f"Redis is not reachable at {_redacted(url)} (setting redis_url, "
            f"TAILOR_REDIS_URL): {exc}"
        ) from exc
    if not answer.startswith(b"+PONG"):
        raise ServiceUnavailable(
            f"Redis at {_redacted(url)} (TAILOR_REDIS_URL) did not answer PING: {answer[:80]!r}"
        )


def _resp(*args: str) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def check_rabbitmq(url: str, timeout: float = 3.0) -> None:
    """RabbitMQ accepts an AMQP connection at ``url``."""
    import pika

    params = pika.URLParameters(url)
    params.socket_timeout = timeout
    params.blocked_connection_timeout = timeout
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
    except Exception as exc:
        raise ServiceUnavailable(
            f"RabbitMQ is not reachable at {_redacted(url)} (setting rabbitmq_url, "
            f"TAILOR_RABBITMQ_URL): {type(exc).__name__} {exc}"
        ) from exc


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database named in ``url`` if missing; True when created."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database or ""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name must be letters, digits and '_', got {name!r}")
    engine = create_engine(_maintenance_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if exists:
                return False
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            return True
    finally:
        engine.dispose()


def drop_database(url: str) -> None:
    """Drop the PostgreSQL database named in ``url`` (its connections are closed first)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(url).database or ""
    engine = create_engine(_maintenance_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        engine.dispose()


def prepare_databases(settings: Settings) -> None:
    """Check the three services, then create the catalog and tracker databases if missing."""
    check_backing_services(settings)
    ensure_database(settings.database_url)
    ensure_database(tracker_database_url(settings))


def nginx_executable() -> str:
    """Path of nginx, or :class:`ServiceUnavailable` saying how to install it."""
    found = shutil.which("nginx") or next((c for c in NGINX_CANDIDATES if Path(c).exists()), None)
    if not found:
        raise ServiceUnavailable(
            "nginx (the production profile's load balancer) is not installed: "
            "`sudo apt-get install nginx` (scripts/bootstrap.sh installs it when run as root)."
        )
    return found


# -- the stack ------------------------------------------------------------------------------
@dataclass
class ProductionStack:
    """The running services of a production deployment on this machine."""

    settings: Settings
    token: str
    rasa: list[P.Service]
    actions: list[P.Service]
    balancer: P.Service
    analytics: P.Service
    web: P.Service | None = None
    rasa_ports: list[int] = field(default_factory=list)
    action_ports: list[int] = field(default_factory=list)

    @property
    def services(self) -> list[P.Service]:
        """Every service, in start order."""
        extra = [self.web] if self.web is not None else []
        return [*self.actions, *self.rasa, self.balancer, self.analytics, *extra]

    @property
    def url(self) -> str:
        """The balanced Rasa URL (REST channel, HTTP API)."""
        return self.settings.rasa_url

    def replica_url(self, index: int) -> str:
        """The URL of one Rasa replica, bypassing the balancer."""
        return f"http://{self.settings.host}:{self.rasa_ports[index]}"

    def stop(self) -> None:
        """Stop every service (web app first, action servers last)."""
        for svc in reversed(self.services):
            svc.stop()


def replica_ports(base: int, count: int) -> list[int]:
    """``count`` consecutive ports from ``base`` (5005, 5006, … for the Rasa replicas)."""
    return [base + i for i in range(count)]


def build_stack(
    settings: Settings,
    model: Path,
    *,
    rasa_ports: Sequence[int] | None = None,
    action_ports: Sequence[int] | None = None,
    with_web: bool = True,
    lock_prefix: str = "tailor",
) -> ProductionStack:
    """The services of a production deployment, not started yet.

    ``settings`` should come from :func:`production_settings`; ports default to consecutive
    ones from ``rasa_port``/``action_port``.
    """
    rasa_ports = list(rasa_ports or replica_ports(settings.rasa_port, settings.rasa_replicas))
    action_ports = list(
        action_ports or replica_ports(settings.action_port, settings.action_replicas)
    )
    home = Path(settings.home)
    run_dir, log_dir = home / "run", home / "logs"
    run_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    endpoints = run_dir / "endpoints.yml"
    endpoints.write_text(endpoints_yaml(settings, lock_prefix), encoding="utf-8")
    endpoints.chmod(0o600)  # it may hold database and broker passwords
    token = secrets.token_hex(16)

    actions = []
    for i, port in enumerate(action_ports, start=1):
        svc = P.action_server(settings, port=port)
        svc.name = f"action server {i}"
        svc.log_path = log_dir / f"actions-{i}.log"
        actions.append(svc)
    rasa = []
    for i, port in enumerate(rasa_ports, start=1):
        svc = P.rasa_server(settings, model, token=token, port=port, endpoints=endpoints)
        svc.name = f"Rasa server {i}"
        svc.log_path = log_dir / f"rasa-{i}.log"
        svc.env["TICKET_LOCK_LIFETIME"] = str(LOCK_LIFETIME_SECONDS)
        rasa.append(svc)
    balancer = _balancer(settings, rasa_ports, action_ports, run_dir, log_dir)
    analytics = P.Service(
        name="analytics consumer",
        cmd=[sys.executable, "-m", "tailor.analytics"],
        log_path=log_dir / "analytics.log",
        ready=lambda: _file_says(log_dir / "analytics.log", "consuming"),
        env=_analytics_env(settings),
    )
    web = P.web_server(settings, token) if with_web else None
    return ProductionStack(
        settings=settings,
        token=token,
        rasa=rasa,
        actions=actions,
        balancer=balancer,
        analytics=analytics,
        web=web,
        rasa_ports=rasa_ports,
        action_ports=action_ports,
    )


def _analytics_env(settings: Settings) -> dict[str, str]:
    env = P.tailor_env(settings)
    env.update(
        {
            "TAILOR_PROFILE": "production",
            "TAILOR_RABBITMQ_URL": settings.rabbitmq_url,
            "TAILOR_EVENTS_QUEUE": settings.events_queue,
            "TAILOR_POSTGRES_URL": settings.postgres_url,
        }
    )
    return env


def _file_says(path: Path, needle: str) -> bool:
    try:
        return needle in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _balancer(
    settings: Settings,
    rasa_ports: Sequence[int],
    action_ports: Sequence[int],
    run_dir: Path,
    log_dir: Path,
) -> P.Service:
    nginx = nginx_executable()
    worker_user = None
    temp = run_dir / "nginx-temp"
    temp.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # nginx started by root runs its workers as an unprivileged user; they write
        # buffered bodies to the temp folder.
        nobody = pwd.getpwnam("nobody")
        import grp

        worker_user = f"nobody {grp.getgrgid(nobody.pw_gid).gr_name}"
        for path in (temp, *(temp / d for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"))):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    conf = run_dir / "nginx.conf"
    conf.write_text(
        nginx_conf(
            host=settings.host,
            listen_port=settings.balancer_port,
            rasa_ports=rasa_ports,
            action_ports=action_ports,
            run_dir=run_dir,
            log_dir=log_dir,
            worker_user=worker_user,
        ),
        encoding="utf-8",
    )
    test = subprocess.run(
        [nginx, "-t", "-p", str(run_dir), "-c", str(conf), "-e", str(log_dir / "nginx-error.log")],
        capture_output=True,
        text=True,
        check=False,
    )
    if test.returncode != 0:
        raise ServiceUnavailable(f"nginx rejected {conf}:\n{test.stderr.strip()}")
    url = f"http://{settings.host}:{settings.balancer_port}/balancer-health"
    return P.Service(
        name="load balancer (nginx)",
        cmd=[
            nginx,
            "-p",
            str(run_dir),
            "-c",
            str(conf),
            "-e",
            str(log_dir / "nginx-error.log"),
            "-g",
            "daemon off;",
        ],
        log_path=log_dir / "nginx.log",
        ready=lambda: P._http_ok(url),
    )


def check_stack_ports(settings: Settings, stack: ProductionStack) -> None:
    """Fail early, naming the port, when a port of the stack is taken."""
    ports = [
        *(("Rasa server", p) for p in stack.rasa_ports),
        *(("action server", p) for p in stack.action_ports),
        ("load balancer", settings.balancer_port),
    ]
    if stack.web is not None:
        ports.append(("web app", settings.web_port))
    for name, port in ports:
        if P.port_in_use(settings.host, port):
            raise P.ServiceError(
                f"Port {port} for the {name} is already in use on {settings.host}: stop what "
                "uses it or choose other ports (TAILOR_RASA_PORT, TAILOR_ACTION_PORT, "
                "TAILOR_BALANCER_PORT, TAILOR_WEB_PORT; replicas use consecutive ports)."
            )


def start_stack(
    stack: ProductionStack, echo: Callable[[str], None] | None = None, timeout: float = 600
) -> float:
    """Start every service, wait until each is ready and warm up the action servers; returns
    the seconds taken. On failure everything started is stopped and the error raised."""
    say = echo or (lambda _line: None)
    t0 = time.monotonic()
    try:
        for svc in [*stack.actions, *stack.rasa, stack.analytics]:
            svc.start()
        for svc in [*stack.actions, stack.analytics, *stack.rasa]:
            took = svc.wait_ready(timeout=timeout, echo=echo)
            say(f"  {svc.name} ready in {took:.1f} s (log: {svc.log_path})")
        stack.balancer.start()
        stack.balancer.wait_ready(timeout=30, echo=echo)
        if stack.web is not None:
            stack.web.start()
            stack.web.wait_ready(timeout=180, echo=echo)
        for port in stack.action_ports:
            direct = stack.settings.replace(
                action_url=f"http://{stack.settings.host}:{port}/webhook"
            )
            P.warm_up_actions(direct)
    except BaseException:
        stack.stop()
        raise
    return time.monotonic() - t0


def memory_mb(stack: ProductionStack) -> dict[str, float]:
    """Resident memory (MiB) of each running service's process tree (Linux /proc)."""

    return {
        svc.name: P.tree_rss_mb(svc.proc.pid)
        for svc in stack.services
        if svc.proc is not None and svc.alive()
    }
