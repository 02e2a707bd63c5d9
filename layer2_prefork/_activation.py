"""Socket activation: listening sockets passed by systemd (``LISTEN_FDS``, ``LISTEN_PID``).

With a ``.socket`` unit, systemd binds the listening sockets itself and
starts the service when the first client connects (or at boot). The
service inherits the sockets as descriptors 3, 4, ... and learns of them
from three environment variables, as ``sd_listen_fds(3)`` describes:

* ``LISTEN_PID``: the PID they are meant for; another process (a child
  that inherited the environment) must ignore them;
* ``LISTEN_FDS``: how many descriptors, starting at 3;
* ``LISTEN_FDNAMES``: optional names, separated by ``:``
  (``FileDescriptorName=`` in the unit).

`socket_activation()` reads them and returns one `Inherited` listener per
descriptor, to pass to `listen()`. Clients that connect while the server
starts (or restarts) wait in the socket's backlog instead of being refused.

The same variables carry the listening sockets from one master to the
next in an upgrade (see `_upgrade`): the old master passes every socket
it listens on, the ones systemd gave it under their own names, and the
ones it bound itself under a name that says which listener it was
(`listener_key`, behind the prefix ``upgrade/``). `socket_activation`
returns only the former; `bind()` asks `passed_socket` for the latter, so
a script's ``listen(TCP("127.0.0.1", 8080))`` gets the very socket the
old master listened on instead of binding a new one.

Invariants: the variables are removed once read (so workers and child
processes never see them), the descriptors are made close-on-exec, and a
``LISTEN_PID`` that is not this process's gives no listeners at all.

Moonbridge: none; planned in the design ("systemd socket activation").
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping, Sequence
from urllib.parse import quote, unquote

from ._config import TCP, Inherited, Local

__all__ = ["LISTEN_FDS_START", "listen_environment", "listener_key", "passed_socket",
           "socket_activation"]

LISTEN_FDS_START = 3
"""The first descriptor systemd passes (``SD_LISTEN_FDS_START``)."""
UPGRADE_PREFIX = "upgrade/"
"""Names of the sockets an old master bound itself and passes on in an upgrade."""

_passed: dict[str, list[int]] = {}
"""Sockets passed by an old master, by `listener_key`, not yet taken by `bind()`."""
_activated: list[Inherited] = []
"""Sockets systemd passed, read by `passed_socket` before `socket_activation` asked."""


def socket_activation(environ: MutableMapping[str, str] | None = None) -> tuple[Inherited, ...]:
    """Return the listeners systemd passed to this process, and forget the variables.

    Call it once, in the script that declares the pools::

        listen(*socket_activation(), connect=handle)

    A second call returns an empty tuple (the variables are gone).

    Args:
        environ: Where to read the variables (default `os.environ`).

    Returns:
        One `Inherited` per passed descriptor, in order; empty when the
        process was not socket-activated or the variables are for another
        process or malformed. Sockets an old master passed on in an upgrade
        for listeners it bound itself are kept for `bind()` instead.

    Examples:
        >>> socket_activation({"LISTEN_PID": "1", "LISTEN_FDS": "2"})  # not our PID
        ()
    """
    _load(os.environ if environ is None else environ)
    listeners = tuple(_activated)
    _activated.clear()
    return listeners


def _load(env: MutableMapping[str, str]) -> None:
    """Sort what the variables pass into systemd's sockets and an old master's."""
    for fd, name in _read(env):
        if name.startswith(UPGRADE_PREFIX):
            _passed.setdefault(unquote(name[len(UPGRADE_PREFIX):]), []).append(fd)
        else:
            _activated.append(Inherited(fd, name))


def _read(env: MutableMapping[str, str]) -> list[tuple[int, str]]:
    """The (descriptor, name) pairs the variables pass to this process; the variables go."""
    pid_text, count_text = env.get("LISTEN_PID", ""), env.get("LISTEN_FDS", "")
    names = env.get("LISTEN_FDNAMES", "").split(":")
    for variable in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(variable, None)
    if not (pid_text.isdigit() and count_text.isdigit()) or int(pid_text) != os.getpid():
        return []
    passed = []
    for index in range(int(count_text)):
        fd = LISTEN_FDS_START + index
        try:
            os.set_inheritable(fd, False)
        except OSError:
            continue  # not open: nothing was passed there
        passed.append((fd, names[index] if index < len(names) else ""))
    return passed


def listener_key(listener: TCP | Local) -> str:
    """What identifies a listener from one master to the next: its address as declared.

    A port of 0 stays 0: the next master that declares ``TCP(host, 0)``
    gets the socket with the port the kernel chose for the last one.

    Examples:
        >>> listener_key(TCP("127.0.0.1", 0)), listener_key(Local("/run/app.sock"))
        ('tcp 127.0.0.1 0', 'unix /run/app.sock')
    """
    if isinstance(listener, TCP):
        return f"tcp {listener.host} {listener.port}"
    return f"unix {os.path.abspath(os.fspath(listener.path))}"


def passed_socket(listener: TCP | Local) -> int | None:
    """The descriptor an old master passed for this listener, or `None` (bind a new one).

    Reads the variables first if nobody did (a script that does not call
    `socket_activation`, or calls it later: systemd's sockets wait for it);
    each passed socket is given out once.
    """
    _load(os.environ)
    found = _passed.get(listener_key(listener))
    return found.pop(0) if found else None


def listen_environment(names: Sequence[str], pid: int) -> dict[str, str]:
    """The variables that pass sockets named `names` at descriptors 3, 4, ... to `pid`.

    A name is either a systemd name (``FileDescriptorName=``) or, for a
    listener this process bound itself, ``upgrade/`` and its
    `listener_key`; ``:`` separates names, so such a key is quoted.

    Examples:
        >>> listen_environment(["upgrade/tcp ::1 80", "web"], pid=7)["LISTEN_FDNAMES"]
        'upgrade/tcp%20%3A%3A1%2080:web'
    """
    return {"LISTEN_PID": str(pid), "LISTEN_FDS": str(len(names)),
            "LISTEN_FDNAMES": ":".join(_quote(name) for name in names)}


def _quote(name: str) -> str:
    if name.startswith(UPGRADE_PREFIX):
        return UPGRADE_PREFIX + quote(name[len(UPGRADE_PREFIX):], safe="")
    return name
