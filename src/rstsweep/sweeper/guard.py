"""One run per store: a second `rstsweep run` refuses while another run's heartbeat is live.

Chosen design: refusal, not cell claims. Before it touches Ray, `run` reads the store's
heartbeat; if it is live (recent, and on this host its pid still exists: `status.heartbeat_live`)
the run stops with one line naming that run's pid and host, unless `--force`. Once connected to
Ray (so a refused request still leaves the store untouched) the driver checks again and writes its
own heartbeat (`claim`; its progress tracker keeps it fresh while trials run) and removes it when
it ends (`release`), so a run started while another is still launching trials is refused too.
This is a guard, not a lock: two runs started within the same moment can both pass,
and `--force` runs anyway; neither breaks the store (each finished cell is one trials row,
duplicates are deduplicated on read), it only costs compute. Heartbeats live in the store itself,
so the guard works across machines sharing an object store.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING

from rstsweep.errors import RstError
from rstsweep.sweeper.status import heartbeat_live

if TYPE_CHECKING:
    from rstsweep.store.store import Store


def refuse_if_live(store: Store, *, force: bool) -> None:
    """RstError naming the other run when `store` has a live heartbeat and not `force`."""
    beat = store.read_heartbeat()
    if force or not heartbeat_live(beat):
        return
    assert beat is not None
    age = max(0.0, time.time() - float(beat.get("updated_at", 0)))
    raise RstError(
        f"{store.root}: another run is live on this store (pid {beat.get('pid')} on "
        f"{beat.get('host')}, sweep {beat.get('sweep')}, heartbeat {age:.0f} s ago); "
        "wait for it to end, or pass --force to run anyway"
    )


def claim(store: Store, *, sweep: str, profile: str, force: bool) -> None:
    """Check again (starting Ray takes a while), then mark the store as this run's."""
    refuse_if_live(store, force=force)
    store.write_heartbeat({"sweep": sweep, "profile": profile, "running": [], "state": "starting"})


def release(store: Store) -> None:
    """Remove the heartbeat if it is still this process's (the driver's tracker may have)."""
    if _ours(store.read_heartbeat()):
        store.clear_heartbeat()


def _ours(beat: dict[str, object] | None) -> bool:
    if not beat:
        return False
    return beat.get("pid") == os.getpid() and beat.get("host") == socket.gethostname()
