"""CPU placement of an embedded stack: the Rasa server and the action server on CPUs of
their own (``TAILOR_CPU_AFFINITY``), checked on real child processes and their threads."""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path

import pytest

from tailor.config import Settings
from tailor.runtime import processes as P


@pytest.mark.parametrize("n", range(0, 9))
def test_split_gives_each_server_cpus_and_uses_them_all(n: int) -> None:
    cpus = list(range(10, 10 + n))
    split = P.split_cpus(reversed(cpus))
    if n < 2:
        assert split is None
        return
    assert split is not None
    rasa, actions = split
    assert rasa and actions and not rasa & actions
    assert rasa | actions == set(cpus)
    assert max(rasa) < min(actions)  # the first ones to Rasa
    assert len(rasa) == n // 2  # the action server's threads get the larger half


def test_split_ignores_duplicates_and_order() -> None:
    assert P.split_cpus([3, 1, 3, 1]) == (frozenset({1}), frozenset({3}))


def test_describe_cpus() -> None:
    assert P.describe_cpus(None) == "any CPU"
    assert P.describe_cpus({0}) == "CPU 0"
    assert P.describe_cpus({3, 1, 2}) == "CPUs 1-3"
    assert P.describe_cpus({0, 2}) == "CPUs 0, 2"


def test_shares_follow_the_setting_and_the_profile(tmp_path: Path) -> None:
    embedded = Settings(home=tmp_path)
    available = os.sched_getaffinity(0)
    assert P.cpu_shares(embedded) == P.split_cpus(available)
    assert P.cpu_shares(embedded.replace(cpu_affinity="off")) is None
    assert P.cpu_shares(embedded.replace(profile="production")) is None


def test_bad_affinity_setting_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"TAILOR_CPU_AFFINITY.*auto, off.*'pinned'"):
        Settings.load(env={"TAILOR_CPU_AFFINITY": "pinned"}, home=tmp_path)


def test_servers_get_their_shares(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    shares = P.cpu_shares(settings)
    actions = P.action_server(settings)
    rasa = P.rasa_server(settings, tmp_path / "model.tar.gz")
    if shares is None:  # a one-CPU machine: nothing to separate
        assert actions.cpus is None and rasa.cpus is None
    else:
        assert (rasa.cpus, actions.cpus) == shares
    off = settings.replace(cpu_affinity="off")
    assert P.action_server(off).cpus is None
    assert P.rasa_server(off, tmp_path / "model.tar.gz").cpus is None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to one")
def test_a_started_service_and_its_later_threads_run_on_its_cpus(tmp_path: Path) -> None:
    cpu = max(os.sched_getaffinity(0))
    out = tmp_path / "affinity.txt"
    # the child starts a thread only after a moment, as an interpreter loading a server would
    code = (
        "import json, os, threading, time\n"
        "time.sleep(0.3)\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(sorted(os.sched_getaffinity(0))))\n"
        "t.start(); t.join()\n"
        f"open({str(out)!r}, 'w').write(json.dumps([sorted(os.sched_getaffinity(0)), seen[0]]))\n"
        "time.sleep(30)\n"
    )
    svc = P.Service(
        name="probe",
        cmd=[sys.executable, "-c", code],
        log_path=tmp_path / "probe.log",
        ready=out.exists,
        cpus=frozenset({cpu}),
    )
    svc.start()
    try:
        assert svc.proc is not None
        assert os.sched_getaffinity(svc.proc.pid) == {cpu}
        for _ in itertools.repeat(None, 100):
            if out.exists() and out.read_text():
                break
            time.sleep(0.05)
        main_cpus, thread_cpus = json.loads(out.read_text())
        assert main_cpus == [cpu] and thread_cpus == [cpu]
    finally:
        svc.stop(grace=2.0)


def test_an_unusable_cpu_set_is_logged_and_the_service_still_runs(tmp_path: Path) -> None:
    impossible = frozenset({max(os.sched_getaffinity(0)) + 4096})
    svc = P.Service(
        name="probe",
        cmd=[sys.executable, "-c", "import time; time.sleep(30)"],
        log_path=tmp_path / "probe.log",
        ready=lambda: True,
        cpus=impossible,
    )
    svc.start()
    try:
        assert svc.alive()
        assert svc.proc is not None
        assert os.sched_getaffinity(svc.proc.pid) == os.sched_getaffinity(0)
        assert "could not pin probe to CPUs" in svc.log_path.read_text()
    finally:
        svc.stop(grace=2.0)
