"""Dagster resources over the shared infrastructure; bound once in ``definitions.py``."""

# No `from __future__ import annotations`: Dagster reads annotations at runtime.
import re
from pathlib import Path

from dagster import ConfigurableResource

from tunix_rt_pipelines.core.artifacts import ArtifactStore
from tunix_rt_pipelines.traces.store import TraceStore


class TraceStoreResource(ConfigurableResource):
    """Our tables: traces, rejects, ingest batches, dataset snapshots."""

    database_url: str  # SQLAlchemy URL; SQLite file under the home folder by default

    def get_store(self) -> TraceStore:
        return TraceStore(self.database_url)

    @property
    def backend(self) -> str:
        return self.database_url.split(":", 1)[0].split("+", 1)[0]


class ArtifactStoreResource(ConfigurableResource):
    """Content-addressed blobs (sha256) under ``root``."""

    root: str

    def get_store(self) -> ArtifactStore:
        return ArtifactStore(Path(self.root))


class WorkdirResource(ConfigurableResource):
    """Working folders on local disk: training runs (resumable, so stable paths) and unpacked models."""

    root: str  # the home folder

    @property
    def runs(self) -> Path:
        return Path(self.root) / "runs"

    @property
    def models(self) -> Path:
        return Path(self.root) / "models"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class InboxResource(ConfigurableResource):
    """The folder of trace files waiting for ingestion; one dynamic partition per file name."""

    path: str

    @property
    def folder(self) -> Path:
        return Path(self.path)

    def file(self, name: str) -> Path:
        if name != safe_name(name):
            raise ValueError(f"not an inbox file name: {name!r}")
        return self.folder / name


# Room for the inbox to add '-' and a sha256 (65 characters) within a file name's 255 bytes.
MAX_NAME_CHARS = 150


def safe_name(name: str) -> str:
    """A partition-key-safe file name: letters, digits, '.', '_' and '-' only, no leading dot,
    at most ``MAX_NAME_CHARS`` (a longer name keeps its last suffix)."""
    cleaned = _UNSAFE.sub("_", Path(name).name).lstrip(".") or "unnamed"
    if len(cleaned) > MAX_NAME_CHARS:
        suffix = Path(cleaned).suffix[:20]
        cleaned = cleaned[: MAX_NAME_CHARS - len(suffix)] + suffix
    return cleaned
