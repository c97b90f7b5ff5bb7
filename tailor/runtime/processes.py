"""Start, watch and stop the services of one Tailor deployment on this machine."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tailor.config import PROJECT_ROOT, Settings
from tailor.runtime.hints import HINTS_ENV
from tailor.runtime.rasa import (
    bot_pythonpath,
    copy_credentials,
    rasa_env,
    rasa_executable,
    write_endpoints,
)


class ServiceError(RuntimeError):
    """A service did not start; the message includes the end of its log."""


def free_port() -> int:
    """A TCP port nobody listens on right now (for private stacks: tests, evaluations)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


@dataclass
class Service:
    """One child process with a readiness probe."""

    name: str
    cmd: list[str]
    log_path: Path
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    cwd: Path = PROJECT_ROOT
    #: CPUs the process may run on (``None``: any); see :func:`cpu_shares`.
    cpus: frozenset[int] | None = None
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> None:
        """Launch the process in its own process group, logging to ``log_path``."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._log = log
        if self.cpus:
            # Popen returns once the child has exec'd, before the interpreter has started any
            # thread; the threads it starts later inherit the main thread's CPUs.
            try:
                os.sched_setaffinity(self.proc.pid, self.cpus)
            except OSError as exc:  # e.g. CPUs taken away by a cgroup since we looked
                log.write(
                    f"[tailor] could not pin {self.name} to CPUs {sorted(self.cpus)}: "
                    f"{exc}; the scheduler places it\n".encode()
                )
                log.flush()

    def wait_ready(self, timeout: float, echo: Callable[[str], None] | None = None) -> float:
        """Poll until ready; returns seconds taken. Raises with the log tail on failure."""
        deadline = time.monotonic() + timeout
        last_note = 0.0
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with code {self.proc.returncode}.\n{self.tail()}"
                )
            try:
                if self.ready():
                    return time.monotonic() - self.started_at
            except (httpx.HTTPError, OSError):
                pass
            waited = time.monotonic() - self.started_at
            if echo and waited - last_note >= 10:
                last_note = waited
                echo(f"  … waiting for {self.name} ({waited:.0f} s)")
            time.sleep(0.25)
        raise ServiceError(f"{self.name} was not ready after {timeout:.0f} s.\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        """The last lines of the service log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def pause(self) -> None:
        """Freeze the process group (SIGSTOP): it keeps its port but answers nothing, like a
        hung or overloaded service."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused process group run again (SIGCONT)."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self, grace: float = 8.0) -> None:
        """SIGTERM the process group, then SIGKILL after ``grace`` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)  # a paused process cannot exit
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        if getattr(self, "_log", None) is not None:
            self._log.close()


def _process_tree(pid: int) -> Iterator[int]:
    """``pid`` and its live descendants (Linux /proc); those that have gone are skipped."""
    todo = [pid]
    while todo:
        p = todo.pop()
        yield p
        try:
            todo.extend(int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split())
        except OSError:
            continue


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and all its live descendants have used so far, in
    seconds (Linux /proc; 0 for a process that has gone)."""
    total = 0
    for p in _process_tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        # the command name (field 2) may hold spaces: count the fields after its ")"
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB (Linux /proc)."""
    total = 0
    for p in _process_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")),
            0,
        )
    return total / 1024


def _http_ok(url: str, headers: dict[str, str] | None = None) -> bool:
    return httpx.get(url, timeout=2.0, headers=headers).status_code == 200


def split_cpus(cpus: Collection[int]) -> tuple[frozenset[int], frozenset[int]] | None:
    """The Rasa server's and the action server's CPUs out of ``cpus``: the first half (at
    least one) and the rest; ``None`` with fewer than two CPUs (nothing to separate)."""
    ordered = sorted(set(cpus))
    if len(ordered) < 2:
        return None
    half = len(ordered) // 2
    return frozenset(ordered[:half]), frozenset(ordered[half:])


def cpu_shares(settings: Settings) -> tuple[frozenset[int], frozenset[int]] | None:
    """CPUs of the Rasa server and of the action server of an embedded stack
    (``cpu_affinity``), out of those this process may use; ``None``: leave it to the
    scheduler (``off``, the production profile, one CPU, or no affinity API).

    The Rasa server's single event loop is the stack's bottleneck from a few concurrent
    shoppers on; when the scheduler puts the action server's work on its core, every turn
    waits. With a core of its own it is never displaced.
    """
    if settings.cpu_affinity == "off" or settings.profile != "embedded":
        return None
    if not hasattr(os, "sched_getaffinity"):  # pragma: no cover - not Linux
        return None
    return split_cpus(os.sched_getaffinity(0))


def describe_cpus(cpus: Collection[int] | None) -> str:
    """``"CPU 0"``, ``"CPUs 1-3"``, ``"CPUs 0, 2"``; ``"any CPU"`` for ``None``."""
    if not cpus:
        return "any CPU"
    ordered = sorted(cpus)
    if len(ordered) == 1:
        return f"CPU {ordered[0]}"
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"CPUs {ordered[0]}-{ordered[-1]}"
    return "CPUs " + ", ".join(str(c) for c in ordered)


def turn_hints(settings: Settings) -> str:
    """Whether the servers use turn hints (:mod:`tailor.runtime.hints`): as set, in the
    embedded profile; never in the production profile, whose Rasa servers reach the action
    servers through the load balancer (a hint would not reach the replica that gets the
    action call)."""
    return settings.turn_hints if settings.profile == "embedded" else "off"


def tailor_env(settings: Settings) -> dict[str, str]:
    """Environment handing our settings to child processes as ``TAILOR_*`` variables."""
    env = dict(os.environ)
    env.update(
        {
            "TAILOR_HOME": str(settings.home),
            "TAILOR_DATABASE_URL": settings.database_url,
            "TAILOR_EMBEDDING_MODEL": settings.embedding_model,
            "TAILOR_EMBEDDING_BACKEND": settings.embedding_backend,
            "TAILOR_EMBEDDING_BATCH_SIZE": str(settings.embedding_batch_size),
            "TAILOR_INDEX_DIR": str(settings.index_dir),
            "TAILOR_INDEX_BACKEND": settings.index_backend,
            "TAILOR_RASA_URL": settings.rasa_url,
            "TAILOR_SUGGESTIONS": str(settings.suggestions),
            # The action server verifies customer tokens and the web app signs demo ones:
            # both must hold the same secret ("" = nobody is identified).
            "TAILOR_CUSTOMER_TOKEN_SECRET": settings.customer_token_secret,
            "TAILOR_DEMO_LOGIN": "true" if settings.demo_login else "false",
            "TAILOR_TEXT_CACHES": "true" if settings.text_caches else "false",
            HINTS_ENV: turn_hints(settings),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def action_server(
    settings: Settings, actions_module: str = "actions", port: int | None = None
) -> Service:
    """The Rasa SDK action server (our 3.11 venv, in one process: see
    :mod:`tailor.runtime.action_server`) serving ``actions_module`` (our actions;
    the benchmark's floor serves ``tailor.bench.noop_actions``) on ``port`` (default
    ``action_port``; the production profile's replicas get ports of their own), on the
    CPUs :func:`cpu_shares` leaves it."""
    port = port or settings.action_port
    env = tailor_env(settings)
    env["SANIC_HOST"] = settings.host
    return Service(
        name="action server",
        cmd=[
            sys.executable,
            "-m",
            "tailor.runtime.action_server",
            "--actions",
            actions_module,
            "--port",
            str(port),
        ],
        log_path=Path(settings.home) / "logs" / "actions.log",
        ready=lambda: _http_ok(f"http://{settings.host}:{port}/health"),
        env=env,
        cpus=shares[1] if (shares := cpu_shares(settings)) else None,
    )


def rasa_server(
    settings: Settings,
    model: Path,
    token: str | None = None,
    port: int | None = None,
    endpoints: Path | None = None,
) -> Service:
    """The Rasa server (3.10 venv) with REST and socket.io channels and the HTTP API.

    ``port`` defaults to ``rasa_port`` and ``endpoints`` to the embedded profile's file
    (:func:`write_endpoints`); the production profile's replicas pass both. It runs on the
    CPUs :func:`cpu_shares` gives it.
    """
    # Hex, not urlsafe: a token starting with "-" would be read by argparse as an option.
    token = token or secrets.token_hex(16)
    port = port or settings.rasa_port
    run_dir = Path(settings.home) / "run"
    endpoints = endpoints or write_endpoints(settings, run_dir / "endpoints.yml")
    credentials = copy_credentials(settings, run_dir / "credentials.yml")
    # The token travels in the environment, not the arguments (visible in `ps`): see
    # tailor_rasa_run in the Rasa plugins.
    cmd = [
        str(rasa_executable(settings).with_name("python")),
        "-m",
        "tailor_rasa_run",
        "run",
        "--model",
        str(model),
        "--endpoints",
        str(endpoints),
        "--credentials",
        str(credentials),
        "--interface",
        settings.host,
        "--port",
        str(port),
        "--enable-api",
        "--cors",
        "*",
    ]
    service = Service(
        name="Rasa server",
        cmd=cmd,
        log_path=Path(settings.home) / "logs" / "rasa.log",
        ready=lambda: _rasa_model_loaded(f"http://{settings.host}:{port}", token),
        env=rasa_env({**bot_pythonpath(settings), HINTS_ENV: turn_hints(settings)}),
        cwd=Path(settings.bot_dir),
        cpus=shares[0] if (shares := cpu_shares(settings)) else None,
    )
    service.env["TAILOR_RASA_TOKEN"] = token
    return service


def _rasa_model_loaded(url: str, token: str) -> bool:
    resp = httpx.get(f"{url}/status", params={"token": token}, timeout=2.0)
    return resp.status_code == 200 and bool(resp.json().get("model_file"))


def web_server(settings: Settings, rasa_token: str) -> Service:
    """The web app (page, chat proxy, history) on the 3.11 venv."""
    env = tailor_env(settings)
    env["TAILOR_RASA_TOKEN"] = rasa_token
    return Service(
        name="web app",
        cmd=[
            sys.executable,
            "-m",
            "uvicorn",
            "tailor.web.app:create_app",
            "--factory",
            "--host",
            settings.host,
            "--port",
            str(settings.web_port),
            "--log-level",
            "warning",
        ],
        log_path=Path(settings.home) / "logs" / "web.log",
        ready=lambda: _http_ok(f"http://{settings.host}:{settings.web_port}/api/health"),
        env=env,
    )


def warm_up_actions(settings: Settings) -> None:
    """Load the recommender in the action server now, so the first shopper does not wait."""
    body = {
        "next_action": "action_warmup",
        "sender_id": "tailor-warmup",
        "tracker": {"sender_id": "tailor-warmup", "slots": {}, "latest_message": {}, "events": []},
        "domain": {},
        "version": "3.6.21",
    }
    resp = httpx.post(settings.action_url, json=body, timeout=300.0)
    resp.raise_for_status()


def check_ports(settings: Settings) -> None:
    """Fail early, naming the port, when a service port is taken."""
    for name, port in (
        ("action server", settings.action_port),
        ("Rasa server", settings.rasa_port),
        ("web app", settings.web_port),
    ):
        if port_in_use(settings.host, port):
            raise ServiceError(
                f"Port {port} for the {name} is already in use on {settings.host}. Stop what "
                f"uses it or choose another port (TAILOR_{name.split()[0].upper()}_PORT or "
                "the --*-port options of `tailor run`)."
            )
