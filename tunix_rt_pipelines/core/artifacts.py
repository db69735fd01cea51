"""Content-addressed artefact store: a blob's name is its sha256.

Layout: ``<root>/sha256/<first two hex>/<hex>``. Writes go to a temporary file in the
same folder and are renamed into place, so a crash never leaves a half-written blob under
a valid name, and two writers of the same content agree. Reads can verify the hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

_HEX = frozenset("0123456789abcdef")


def file_sha256(path: Path) -> str:
    """sha256 hex of a file, read in 1 MiB chunks (model weights do not fit in memory twice)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class ArtifactIntegrityError(RuntimeError):
    """A stored blob no longer matches its name (tampered with or corrupted)."""


class ArtifactStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, digest: str) -> Path:
        if len(digest) != 64 or not set(digest) <= _HEX:
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        return self.root / "sha256" / digest[:2] / digest

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if not target.exists():
            self._write_atomically(target, lambda f: f.write(data))
        return digest

    def put_file(self, source: Path) -> str:
        digest = file_sha256(source)
        target = self.path_for(digest)
        if not target.exists():
            with source.open("rb") as src:
                self._write_atomically(target, lambda f: shutil.copyfileobj(src, f, 1 << 20))
        return digest

    def get_bytes(self, digest: str, *, verify: bool = True) -> bytes:
        data = self.path_for(digest).read_bytes()
        if verify and hashlib.sha256(data).hexdigest() != digest:
            raise ArtifactIntegrityError(f"artefact {digest} does not match its sha256: refusing to use it")
        return data

    def verify(self, digest: str) -> None:
        if file_sha256(self.path_for(digest)) != digest:
            raise ArtifactIntegrityError(f"artefact {digest} does not match its sha256: refusing to use it")

    def _write_atomically(self, target: Path, write) -> None:  # noqa: ANN001
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)  # blobs are immutable
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


TREE_FORMAT = "tunix-rt-tree/1"


def put_tree(store: ArtifactStore, folder: Path) -> tuple[str, dict]:
    """Store every file of ``folder`` content-addressed; returns (digest, manifest).

    The manifest maps relative paths to sha256 and sizes; its own sha256 (the digest) names
    the whole folder, so a model folder is as immutable and verifiable as a single blob.
    """
    import json

    folder = Path(folder)
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        files[rel] = {"sha256": store.put_file(path), "bytes": path.stat().st_size}
    manifest = {"format": TREE_FORMAT, "files": files}
    digest = store.put_bytes(json.dumps(manifest, sort_keys=True, indent=1).encode())
    return digest, manifest


def get_tree(store: ArtifactStore, digest: str, dest: Path) -> Path:
    """Rebuild the folder named by ``digest`` at ``dest`` (verified; reused when already complete)."""
    import json

    dest = Path(dest)
    marker = dest / ".tree-digest"
    if marker.is_file() and marker.read_text() == digest:
        return dest
    manifest = json.loads(store.get_bytes(digest))
    if manifest.get("format") != TREE_FORMAT:
        raise ValueError(f"artefact {digest} is not a folder manifest")
    tmp = Path(tempfile.mkdtemp(dir=dest.parent if dest.parent.exists() else None, prefix=".tree-"))
    try:
        for rel, entry in manifest["files"].items():
            target = tmp / rel
            if ".." in Path(rel).parts:
                raise ArtifactIntegrityError(f"folder manifest {digest} names a path outside the folder: {rel!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            store.verify(entry["sha256"])
            shutil.copyfile(store.path_for(entry["sha256"]), target)
        (tmp / ".tree-digest").write_text(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
