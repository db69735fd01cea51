"""The inbox folder: putting files in without clobbering, and deciding which files to ingest.

Plain functions; the CLI stages files with ``stage`` and the inbox sensor calls ``scan``.

A file's partition key is its name in the inbox. A name never changes content under the CLI's
feet: ``stage`` publishes with a hard link, which fails instead of replacing, and gives other
content under a taken name a name with its sha256. A person may still overwrite a file they
dropped in by hand; the sensor then ingests the new content as a new batch of the same partition.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tunix_rt_pipelines.core.artifacts import file_sha256
from tunix_rt_pipelines.core.resources import safe_name

# A file is ingested once nothing has written to it for this long: a copy in progress keeps
# touching its modification time, and a file the sensor sees half-written would be ingested cut.
SETTLE_SECONDS = 10.0


def _names(name: str, sha: str) -> Iterator[str]:
    """Where content ``sha`` may live: its own name, then that name with part of, then all of, its hash."""
    stem, dot, ext = name.partition(".")
    yield name
    yield f"{stem}-{sha[:12]}{dot}{ext}"
    yield f"{stem}-{sha}{dot}{ext}"


def _publish(tmp: Path, folder: Path, name: str, sha: str, register: Callable[[str], None]) -> str:
    """Give the finished file ``tmp`` (content ``sha``) a name in ``folder`` that no other content holds."""
    for candidate in _names(name, sha):
        target = folder / candidate
        if not target.exists():
            register(candidate)  # before the file appears: the sensor must not start a run of its own
            try:
                os.link(tmp, target)  # unlike a rename, fails when another process took the name meanwhile
                return candidate
            except FileExistsError:
                pass
        if file_sha256(target) == sha:  # already in the inbox under this name
            register(candidate)
            return candidate
    raise FileExistsError(f"{folder}: every name for {name} (sha256 {sha}) holds other content")


def stage(src: Path, folder: Path, register: Callable[[str], None]) -> str:
    """Copy ``src`` into the inbox ``folder``; returns its partition key (its name there).

    ``register(key)`` is called before the file becomes visible, so that a key is known to
    Dagster before the sensor can see its file. The same content staged twice gets the same
    key; other content under a taken name gets the name with its hash.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".incoming-")  # dot-files are invisible to the sensor
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, src.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
                out.write(block)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from a daemon run by another user
        return _publish(tmp, folder, safe_name(src.name), digest.hexdigest(), register)
    finally:
        tmp.unlink(missing_ok=True)


# Bytes one scan hashes at most: after a lost cursor (or a first scan of a full inbox), the rest
# waits for the next scan instead of running past Dagster's sensor timeout (60 s) every time.
MAX_HASH_BYTES = 2 << 30


@dataclass
class InboxScan:
    """What one look at the inbox decided."""

    ingest: list[tuple[str, str]] = field(default_factory=list)  # (name, sha256) to ingest now
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (dropped-in name, partition-safe name)
    seen: dict[str, list[int]] = field(default_factory=dict)  # name -> [size, mtime_ns] handled; the next cursor
    problems: list[tuple[str, str]] = field(default_factory=list)  # (name, error) skipped this time


def scan(
    folder: Path,
    seen: dict[str, list[int]],
    ingested: Callable[[str, str], bool],
    *,
    busy: frozenset[str] = frozenset(),
    now: float | None = None,
    settle_seconds: float = SETTLE_SECONDS,
    max_hash_bytes: int = MAX_HASH_BYTES,
) -> InboxScan:
    """Decide which inbox files to ingest, given what an earlier scan handled (``seen``).

    A file is looked at once it has settled (not written for ``settle_seconds``) and changed
    since it was handled (size or modification time). It is ingested unless ``ingested(name,
    sha256)`` says a batch of that content under that name exists (the CLI's own ingests, or a
    re-hash after the cursor was lost). A name that is not a partition key (``my data.jsonl``)
    is renamed to one and handled under it on a later scan. Names in ``busy`` (a run of theirs
    is in progress, e.g. the CLI's, which may not have opened its batch yet) wait, unhashed, for
    a later scan. A file that cannot be read or renamed is reported in ``problems`` and tried
    again next time; the others go on. Files past ``max_hash_bytes`` of hashing wait for the
    next scan.
    """
    now = time.time() if now is None else now
    result = InboxScan()
    hashed = 0
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            st = path.stat()
            stamp = [st.st_size, st.st_mtime_ns]
            if seen.get(path.name) == stamp:
                result.seen[path.name] = stamp
                continue
            if now - st.st_mtime < settle_seconds or path.name in busy:
                continue  # still being written, or only just, or being ingested: look again next time
            if hashed and hashed + st.st_size > max_hash_bytes:
                continue
            hashed += st.st_size
            sha = file_sha256(path)
            if path.name != safe_name(path.name):
                new = _publish(path, folder, safe_name(path.name), sha, register=lambda key: None)
                path.unlink()
                result.renamed.append((path.name, new))
                continue
        except OSError as e:  # unreadable, removed meanwhile, a name the folder refuses
            result.problems.append((path.name, f"{type(e).__name__}: {e}"))
            continue
        if not ingested(path.name, sha):
            result.ingest.append((path.name, sha))
        result.seen[path.name] = stamp
    return result
