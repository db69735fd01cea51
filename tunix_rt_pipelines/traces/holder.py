"""Who is ingesting a batch now, and whether they still are.

A running batch records its holder as ``host:pid:start:nonce`` (``start``: the process's start time
in clock ticks, from ``/proc``, so that a reused pid is not mistaken for the holder; ``nonce``: one
per hold, so that two threads of one process are two holders to the fencing). Another
ingest of the same content waits while the holder is alive and takes the batch over, resuming
from its last commit, once it is not. The holder is dead:

* in this process, once the ingest that took it has ended (``new_holder``/``release``): a failure
  that could not mark the batch failed (the database was down) leaves it ``running``;
* on the same host, once no process with that pid and start time runs (a zombie has ended);
* anywhere, once it has not committed for ``LEASE``: every chunk's commit refreshes the batch's
  ``updated_at``. This bounds the wait for a holder on another host (a shared PostgreSQL), and
  for a live process that left a batch ``running`` and went on with other work;
* for a batch with no holder, left ``running`` by code from before holders (migration 0007),
  once it has not committed for ``LEGACY_LEASE``.

A wrong guess cannot corrupt counts: each commit is fenced on the holder (see
``TraceStore.write_chunk``), so a holder whose batch was taken over fails its next write.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import datetime, timedelta, timezone
from functools import cache

# A chunk commits in well under a second; ten minutes without one is a dead or stuck holder.
LEASE = timedelta(minutes=10)
# Code before holders also committed every chunk; a minute of silence means it is gone.
LEGACY_LEASE = timedelta(minutes=1)


def _stat_fields(pid: int) -> list[bytes] | None:
    """Fields 3 on of /proc/<pid>/stat (state first), or None where there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after its ')'.
    return stat.rsplit(b")", 1)[1].split()


def _start_ticks(pid: int) -> str | None:
    """The running process's start time (field 22), or None where unknown or exited (a zombie)."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] == b"Z":
        return None
    return fields[19].decode()


_held_here: set[str] = set()  # holders of this process whose ingests have not ended
_held_lock = threading.Lock()


def new_holder() -> str:
    """A holder for one hold of one batch by this process, counted as alive until ``release``.

    Held before the database hears of it: between the commit that records it and the holding,
    another thread of this process would otherwise judge it dead and take the batch over.
    """
    holder = f"{this_process()}:{uuid.uuid4().hex[:12]}"
    with _held_lock:
        _held_here.add(holder)
    return holder


def release(holder: str | None) -> None:
    with _held_lock:
        _held_here.discard(holder)


def this_process() -> str:
    """This process, as holders name it: ``host:pid:start``."""
    return _token(os.getpid())


@cache
def _token(pid: int) -> str:  # by pid: a forked child is another holder
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or ''}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    fields = _stat_fields(pid)
    if fields is not None:
        return fields[0] != b"Z"
    try:  # no /proc: ask the kernel
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def holder_alive(holder: str | None, updated_at: datetime, now: datetime) -> bool:
    """Whether the ingest recorded as ``holder``, last committed at ``updated_at``, may still be
    working on its batch (see the module doc)."""
    if holder and this_process() in (holder, holder.rsplit(":", 1)[0]):
        with _held_lock:
            return holder in _held_here
    if updated_at.tzinfo is None:  # SQLite returns the stored UTC time without its zone
        updated_at = updated_at.replace(tzinfo=timezone.utc)
    quiet = now - updated_at
    if not holder:
        return quiet < LEGACY_LEASE
    if quiet >= LEASE:
        return False
    host, pid_text, start, *_ = (holder.split(":") + ["", ""])[:3]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if start:
        return _start_ticks(pid) == start
    return pid_alive(pid)
