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

Invariants: the variables are removed once read (so workers and child
processes never see them), the descriptors are made close-on-exec, and a
``LISTEN_PID`` that is not this process's gives no listeners at all.

Moonbridge: none; planned in the design ("systemd socket activation").
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from ._config import Inherited

__all__ = ["LISTEN_FDS_START", "socket_activation"]

LISTEN_FDS_START = 3
"""The first descriptor systemd passes (``SD_LISTEN_FDS_START``)."""


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
        process or malformed.

    Examples:
        >>> socket_activation({"LISTEN_PID": "1", "LISTEN_FDS": "2"})  # not our PID
        ()
    """
    env = os.environ if environ is None else environ
    pid_text, count_text = env.get("LISTEN_PID", ""), env.get("LISTEN_FDS", "")
    names = env.get("LISTEN_FDNAMES", "").split(":")
    for variable in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(variable, None)
    if not (pid_text.isdigit() and count_text.isdigit()) or int(pid_text) != os.getpid():
        return ()
    listeners = []
    for index in range(int(count_text)):
        fd = LISTEN_FDS_START + index
        try:
            os.set_inheritable(fd, False)
        except OSError:
            continue  # not open: nothing was passed there
        listeners.append(Inherited(fd, names[index] if index < len(names) else ""))
    return tuple(listeners)
