"""The benchmark venv and the peers in it: what is installed, installing what is missing.

The peers live in ``bench/.venv`` only, pinned in ``bench/requirements.txt``.
`prepare` runs before any server starts: it creates the venv when a peer
needs it, asks the venv's Python which of the pinned distributions it has
(one probe for all), and installs each missing one on its own, so that a
peer that cannot be installed is left out of the run with a line saying
why, never failing the whole run. bjoern is built from source against
libev: when its headers (``ev.h``) are missing and bjoern is asked for, the
Debian package ``libev-dev`` is installed first (as root, with apt-get).

Invariants: nothing is installed with ``--no-install`` or into an
interpreter given with ``--python`` (a missing peer is then skipped); every
command is bounded in time; pip's output goes to a log file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from _servers import ROOT, SERVERS

BENCH = ROOT / "bench"
VENV = BENCH / ".venv"
REQUIREMENTS = BENCH / "requirements.txt"
LIBEV_HEADER = Path("/usr/include/ev.h")
PROFILER = "py-spy"


def pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """Distribution name (lower case) -> its requirement line (``name==version``)."""
    found = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            found[line.split("==", 1)[0].strip().lower()] = line
    return found


def installed(python: str, names: list[str]) -> dict[str, str]:
    """The versions of the distributions `names` that `python` has."""
    probe = ("import importlib.metadata as m, json, sys\n"
             "found = {}\n"
             "for name in sys.argv[1:]:\n"
             "    try: found[name] = m.version(name)\n"
             "    except m.PackageNotFoundError: pass\n"
             "print(json.dumps(found))")
    done = subprocess.run([python, "-c", probe, *names], capture_output=True, text=True,
                          timeout=60, check=False)
    try:
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        return {}


@dataclass
class Prepared:
    """The interpreter for the servers, the servers kept, and why the others were skipped."""

    python: str
    servers: list[str]
    skipped: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def prepare(servers: list[str], python: str | None, may_install: bool, log: Path) -> Prepared:
    """Make sure every peer in `servers` is installed, or leave it out (see the module)."""
    peers = [name for name in servers if SERVERS[name].peer]
    venv_python = VENV / "bin" / "python"
    own = python is None
    chosen = str(venv_python) if own else _absolute(str(python))
    may_install = may_install and own
    if peers and may_install and not venv_python.exists():
        print(f"bench: creating {VENV} for the peers (bench/requirements.txt)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    if own and not venv_python.exists():
        chosen = sys.executable
    wanted = pins()
    packages = sorted({SERVERS[name].package for name in peers})
    have = installed(chosen, [*packages, PROFILER])
    failed: dict[str, str] = {}
    in_venv = chosen == str(venv_python)
    extra = [PROFILER] if peers and may_install and in_venv and PROFILER not in have else []
    for package in [*packages, *extra]:
        line = wanted.get(package, package)
        if have.get(package) == line.partition("==")[2] or (not own and package in have):
            continue
        if not may_install:
            failed[package] = (f"{package} is not installed in {chosen}; install it with "
                               f"{chosen} -m pip install '{line}'")
            continue
        reason = _install(chosen, package, line, log)
        if reason:
            failed[package] = reason
    have = installed(chosen, packages)
    prepared = Prepared(chosen, [], versions=have)
    for name in servers:
        package = SERVERS[name].package
        if package and (package in failed or package not in have):
            prepared.skipped[name] = failed.get(package, f"{package} is not installed")
            continue
        prepared.servers.append(name)
    return prepared


def _absolute(python: str) -> str:
    """A path given relative to the current folder made absolute (the servers start elsewhere)."""
    return os.path.abspath(python) if os.sep in python else python


def _install(python: str, package: str, line: str, log: Path) -> str:
    """Install one requirement; return "" or why it could not be."""
    if package == "bjoern" and not LIBEV_HEADER.exists():
        reason = install_libev()
        if reason:
            return reason
    print(f"bench: installing {line} into {VENV}", flush=True)
    with open(log, "ab") as out:
        try:
            done = subprocess.run([python, "-m", "pip", "install", "--quiet", line],
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=900, check=False)
        except subprocess.TimeoutExpired:
            return f"pip install {line} took more than 900 s (see {log})"
    if done.returncode != 0:
        return f"pip install {line} failed (exit {done.returncode}; see {log})"
    return ""


def install_libev() -> str:
    """Install the Debian package libev-dev (bjoern's build needs ``ev.h``); "" or why not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return ("bjoern is built from source and needs libev's headers: "
                "sudo apt-get install -y libev-dev")
    print("bench: bjoern needs libev's headers; installing the Debian package libev-dev",
          flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for step in (["apt-get", "install", "-y", "-q", "libev-dev"], ["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", "libev-dev"]):
        try:
            subprocess.run(step, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=600, check=False)
        except subprocess.TimeoutExpired:
            continue
        if LIBEV_HEADER.exists():
            return ""
    return "apt-get install libev-dev failed, so bjoern cannot be built"
