#!/usr/bin/env python3
"""Set up the project's environment and run it: `python3 dev.py demo` or `python3 dev.py test`
(`python3 dev.py test --quick`: lint, types and the pure-Python tests only, in under a minute).

Needs nothing but Python 3.11+: creates .venv, installs sage_ops with its dev extras, verifies
the exact Dagster pins, then runs the demo (embedded database -> nightly_backup -> UI) or the
whole check suite (ruff, mypy, pytest).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".sage_ops_installed"
PINS = {
    "dagster": "1.13.27",
    "dagster-webserver": "1.13.27",
    "dagster-aws": "0.29.27",
    "dagster-docker": "0.29.27",
    "dagster-postgres": "0.29.27",
}


def ensure_env() -> None:
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != wanted:
        print("installing sage_ops and its dependencies into .venv ...", flush=True)
        run([BIN / "python", "-m", "pip", "install", "-q", "--upgrade", "pip"])
        run([BIN / "python", "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]"])
        verify_pins()
        STAMP.write_text(wanted)


def verify_pins() -> None:
    """pip may backtrack the Dagster libraries to ancient releases; refuse to go on if it did."""
    code = "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in %r}))"
    out = subprocess.run(
        [BIN / "python", "-c", code % list(PINS)], capture_output=True, text=True, check=True
    ).stdout
    import json

    found = json.loads(out)
    wrong = {n: v for n, v in found.items() if v != PINS[n]}
    if wrong:
        sys.exit(f"installed Dagster packages do not match the pins: {wrong} (expected {PINS})")


def run(cmd: list[object], **kwargs: object) -> None:
    code = subprocess.run([str(c) for c in cmd], cwd=ROOT, check=False, **kwargs).returncode  # type: ignore[call-overload]
    if code != 0:
        sys.exit(code)


def test(pytest_args: list[str]) -> None:
    if "--quick" in pytest_args:  # no PostgreSQL, Docker, moto server or browser
        pytest_args = ["-m", "quick", "-q", *[a for a in pytest_args if a != "--quick"]]
    run([BIN / "ruff", "check", "."])
    run([BIN / "ruff", "format", "--check", "."])
    run([BIN / "mypy", "sage_ops"])
    code = subprocess.run([BIN / "pytest", *pytest_args], cwd=ROOT, check=False).returncode
    if code == 5:
        sys.exit("pytest collected no tests: that is a failure, not a pass")
    sys.exit(code)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test"):
        sys.exit(__doc__)
    ensure_env()
    if sys.argv[1] == "demo":
        os.chdir(ROOT)
        os.execv(BIN / "sage-ops", [str(BIN / "sage-ops"), "demo", *sys.argv[2:]])
    test(sys.argv[2:])


if __name__ == "__main__":
    main()
