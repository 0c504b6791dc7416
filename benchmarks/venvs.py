"""Virtualenvs for the tools that cannot share recmon's environment: Evidently needs pandas < 3,
query-exporter Python 3.12. Made once per base interpreter and package list, in the user's cache
directory, so a new clone (and its own virtualenv) reuses them: making Evidently's takes about
20 s of pip, half a --quick run."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

_XDG = os.environ.get("XDG_CACHE_HOME", "")  # the spec: a relative path is to be ignored
CACHE = (Path(_XDG) if os.path.isabs(_XDG) else Path.home() / ".cache") / "recmon" / "benchmarks"


class Unavailable(Exception):
    """Why a tool cannot run here."""


def python312() -> str:
    """A Python 3.12 interpreter already on this machine: on PATH, from pyenv, or from uv."""
    found = shutil.which("python3.12")
    if found and _runs(found):  # a pyenv shim is on PATH even when 3.12 is not selected
        return found
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        for candidate in sorted(Path(root, "versions").glob("3.12*/bin/python3.12")):
            return str(candidate)
    if shutil.which("uv"):
        found = subprocess.run(
            ["uv", "python", "find", "--no-python-downloads", "3.12"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if found:
            return found
    raise Unavailable(
        "no Python 3.12 interpreter: none on PATH, none under pyenv, none known to uv; Debian 12 "
        "ships 3.11 only, and pyenv or uv would download one from outside the package registries"
    )


def _runs(python: str) -> bool:
    return subprocess.run([python, "-c", ""], capture_output=True).returncode == 0


def ensure(name: str, python: str, packages: list[str]) -> Path:
    """The virtualenv's python, created with `python -m venv` and pip on first use. One
    directory per base interpreter (a virtualenv's python resolves to it) and package list,
    made under a lock: runs from other clones neither rebuild nor remove each other's."""
    wanted = " ".join([os.path.realpath(python), *packages])
    key = hashlib.sha256(wanted.encode()).hexdigest()[:12]
    venv = CACHE / f"venv-{name}-{key}"
    ready = venv / "ready"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(f"{venv.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return venv / "bin" / "python"
        shutil.rmtree(venv, ignore_errors=True)  # a build that was interrupted
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        # --no-compile halves the install; the modules a run imports are compiled as they load.
        done = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--no-compile", *packages],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise Unavailable(f"pip install {' '.join(packages)} failed: {done.stderr[-300:]}")
        ready.write_text(wanted)
    return venv / "bin" / "python"
