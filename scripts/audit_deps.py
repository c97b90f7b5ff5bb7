"""Audit the installed packages of both venvs with pip-audit (PyPI's advisory data).

    .venv/bin/python scripts/audit_deps.py            # part of `make test`
    .venv/bin/python scripts/audit_deps.py --require  # `make audit`: unauditable = failure

Every package installed in ``.venv`` (Tailor, Python 3.11) and ``.venv-rasa`` (Rasa 3.6,
Python 3.10) is looked up. A known vulnerability fails the run unless its id is listed in
``.ci/pip-audit-ignore.txt`` with the reason (see docs/security.md). When the advisory
service cannot be reached (every package skipped), the run says so loudly; it fails only
with ``--require`` (or ``TAILOR_AUDIT_REQUIRED=1``), so an offline machine can still test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IGNORE_FILE = ROOT / ".ci" / "pip-audit-ignore.txt"
VENVS = (".venv", ".venv-rasa")
#: Our own distributions: not on PyPI, so pip-audit cannot (and need not) look them up.
LOCAL = {"tailor"}


def ignored_ids(path: Path = IGNORE_FILE) -> dict[str, str]:
    """``{vulnerability id: reason}`` from lines ``ID  package  reason`` (``#`` comments)."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise SystemExit(f"{path}:{n}: expected 'ID package reason', got {line!r}")
        out[parts[0]] = f"{parts[1]}: {parts[2]}"
    return out


def audit(venv: Path, ignore: dict[str, str]) -> tuple[list[dict], list[dict], int]:
    """(vulnerable packages, skipped packages, packages audited) of one venv."""
    sites = sorted(venv.glob("lib/python3*/site-packages"))
    if not sites:
        raise SystemExit(f"{venv}: no site-packages folder")
    cmd = [str(ROOT / ".venv" / "bin" / "pip-audit"), "--path", str(sites[0])]
    cmd += ["--format", "json", "--progress-spinner", "off"]
    for vid in sorted(ignore):
        cmd += ["--ignore-vuln", vid]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise SystemExit(
            f"pip-audit failed on {venv} (exit {proc.returncode}):\n{proc.stderr[-2000:]}"
        ) from None
    deps = [d for d in report.get("dependencies", []) if d.get("name") not in LOCAL]
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if "skip_reason" in d]
    return vulnerable, skipped, len(deps) - len(skipped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--require", action="store_true", help="fail if nothing could be audited")
    args = parser.parse_args(argv)
    require = args.require or os.environ.get("TAILOR_AUDIT_REQUIRED", "") in {"1", "true"}
    ignore = ignored_ids()
    failed = unaudited = False
    for name in VENVS:
        venv = ROOT / name
        if not venv.exists():
            print(f"audit: {name} is not installed; skipped")
            continue
        vulnerable, skipped, audited = audit(venv, ignore)
        print(f"audit: {name}: {audited} packages audited, {len(skipped)} skipped")
        for d in vulnerable:
            failed = True
            for v in d["vulns"]:
                fixes = ", ".join(v.get("fix_versions") or []) or "no fix yet"
                print(f"  VULNERABLE {d['name']} {d['version']}: {v['id']} (fixed in {fixes})")
        if skipped and audited == 0:
            unaudited = True
            print(
                f"  NOT AUDITED: pip-audit could not look up any package of {name}; the "
                f"advisory service is unreachable from here ({skipped[0]['skip_reason']})"
            )
        else:
            for d in skipped:
                print(f"  skipped {d['name']}: {d['skip_reason']}")
    if ignore:
        print(f"audit: {len(ignore)} advisories ignored with reasons in {IGNORE_FILE.name}")
    if failed:
        print("audit: known vulnerabilities found; upgrade, or add an ignore with its reason")
        return 1
    if unaudited:
        print("audit: dependencies were NOT audited (see above)")
        return 2 if require else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
