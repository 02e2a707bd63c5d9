"""The master's phase: running, reloading, stopping gracefully, stopping fast.

The master loop asks `Lifecycle` what the phase allows (is the server
serving? does it keep the connections workers hand over?) instead of
comparing phases itself, and changes the phase only through its
transitions, which refuse the moves that make no sense (a reload while
stopping, a graceful stop after a fast one). A refused move returns
`False` and changes nothing, so a second SIGTERM or SIGUSR2 is harmless.
"""

from __future__ import annotations

import math
from enum import Enum


class Phase(Enum):
    """Where the master is in its life (the transitions are `Lifecycle`'s)."""

    RUNNING = "running"
    RELOADING = "reloading"
    GRACEFUL = "stopping gracefully"
    FAST = "stopping fast"


class Lifecycle:
    """The master's phase: the one place it changes, and what each phase allows.

    The transitions::

        running ---SIGUSR2---> reloading ---done or abandoned---> running
        running, reloading ---SIGTERM, the main listener ended---> stopping gracefully
        any other ---SIGINT, SIGHUP, the graceful deadline---> stopping fast

    Examples:
        >>> life = Lifecycle()
        >>> life.reload(), life.serving, life.reload()
        (True, True, False)
        >>> life.stop_gracefully(deadline=5.0), life.serving, life.reloading
        (True, False, False)
        >>> life.stop_fast(), life.keeps_connections, life.stop_gracefully(deadline=9.0)
        (True, False, False)
    """

    def __init__(self) -> None:
        self.phase = Phase.RUNNING
        self.deadline = math.inf
        """When a graceful stop turns fast (`inf` unless stopping gracefully)."""

    @property
    def serving(self) -> bool:
        """Running or reloading: listeners open, timers run, pools keep their size."""
        return self.phase in (Phase.RUNNING, Phase.RELOADING)

    @property
    def reloading(self) -> bool:
        """A reload is under way."""
        return self.phase is Phase.RELOADING

    @property
    def graceful(self) -> bool:
        """Stopping gracefully: busy workers finish, held connections are still served."""
        return self.phase is Phase.GRACEFUL

    @property
    def keeps_connections(self) -> bool:
        """Anything but a fast stop: connections handed to the master are kept and served."""
        return self.phase is not Phase.FAST

    def reload(self) -> bool:
        """Running -> reloading; `False` (nothing changes) from any other phase."""
        if self.phase is not Phase.RUNNING:
            return False
        self.phase = Phase.RELOADING
        return True

    def reloaded(self) -> None:
        """Reloading -> running (the reload is done or abandoned)."""
        if self.phase is Phase.RELOADING:
            self.phase = Phase.RUNNING

    def stop_gracefully(self, deadline: float) -> bool:
        """Running or reloading -> stopping gracefully until `deadline`; else `False`."""
        if not self.serving:
            return False
        self.phase, self.deadline = Phase.GRACEFUL, deadline
        return True

    def stop_fast(self) -> bool:
        """Any phase but a fast stop -> stopping fast; `False` if already stopping fast."""
        if self.phase is Phase.FAST:
            return False
        self.phase, self.deadline = Phase.FAST, math.inf
        return True
