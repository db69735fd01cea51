"""Where everything lives: one home folder, optionally a PostgreSQL URL for our tables.

Layout of the home folder (``TUNIX_RT_HOME``, default ``./.tunix_rt``)::

    dagster/      the Dagster instance (DAGSTER_HOME): run history, event log, schedules
    tunix_rt.db   our tables (traces, rejects, batches, datasets) unless TUNIX_RT_DATABASE_URL is set
    artifacts/    content-addressed artefact store (sha256)
    inbox/        trace files waiting for ingestion; one dynamic partition per file
    runs/         training run folders (checkpoints, logs, final model) keyed by what they depend on
    models/       model folders unpacked from the artefact store for loading, by digest
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "TUNIX_RT_HOME"
DATABASE_URL_ENV = "TUNIX_RT_DATABASE_URL"
DEFAULT_HOME = ".tunix_rt"

# The repository root holds the shipped eval sets and training configs; the
# package is installed editable, so it is found relative to this file.
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    home: Path  # the one folder that holds all state of an embedded deployment
    database_url: str  # SQLAlchemy URL of our tables (SQLite file in home by default)

    @classmethod
    def from_env(cls) -> "Settings":
        home = Path(os.environ.get(HOME_ENV, DEFAULT_HOME)).expanduser().resolve()
        url = os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{home / 'tunix_rt.db'}"
        return cls(home=home, database_url=url)

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def inbox_dir(self) -> Path:
        return self.home / "inbox"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.dagster_home, self.artifacts_dir, self.inbox_dir, self.runs_dir, self.models_dir):
            path.mkdir(parents=True, exist_ok=True)

    def dagster_instance(self):  # noqa: ANN201  (dagster is imported lazily)
        """The Dagster instance of this home (``DAGSTER_HOME`` where the user chose one).

        Made under a lock: two processes creating a new home's SQLite storages at once stamp
        Alembic's revision twice, which breaks that storage for good ("more than one head").
        """
        from dagster import DagsterInstance

        from tunix_rt_pipelines.core.filelock import file_lock

        self.activate_dagster_home()
        with file_lock(Path(os.environ["DAGSTER_HOME"]) / ".storage.lock"):
            return DagsterInstance.get()

    def activate_dagster_home(self) -> None:
        """Point DAGSTER_HOME at the home folder unless the user chose another instance.

        The embedded instance keeps everything in SQLite under ``dagster/``; its
        dagster.yaml only turns telemetry off. The shared deployment's dagster.yaml is the
        one at the repository root (PostgreSQL, queued runs).
        """
        self.ensure_dirs()
        config = self.dagster_home / "dagster.yaml"
        if not config.exists():
            config.write_text("# embedded default: SQLite storage in this folder\ntelemetry:\n  enabled: false\n")
        os.environ.setdefault("DAGSTER_HOME", str(self.dagster_home))
