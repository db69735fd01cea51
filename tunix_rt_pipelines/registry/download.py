"""Download a model version into a folder, verifying every file's sha256 on the way out.

The store checks each blob against its name before copying (``get_tree``); the copies are
hashed again where they landed, so neither a tampered blob in the store nor a bad copy
reaches the caller as a model. A refused download leaves nothing at the destination.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlalchemy as sa

from tunix_rt_pipelines.core.artifacts import ArtifactIntegrityError, ArtifactStore, file_sha256, get_tree
from tunix_rt_pipelines.registry.versions import get_version


def download(engine: sa.Engine, artifacts: ArtifactStore, ref: str, out_dir: Path) -> Path:
    """Write the version's files to ``out_dir/<name>-v<N>`` and return that folder."""
    version = get_version(engine, ref)
    dest = Path(out_dir) / f"{version.name}-v{version.version}"
    manifest = json.loads(artifacts.get_bytes(version.checkpoint_digest))
    get_tree(artifacts, version.checkpoint_digest, dest)
    for rel, entry in manifest["files"].items():
        if file_sha256(dest / rel) != entry["sha256"]:
            shutil.rmtree(dest, ignore_errors=True)
            raise ArtifactIntegrityError(f"{version.label}: {rel} does not match its sha256 after download")
    return dest
