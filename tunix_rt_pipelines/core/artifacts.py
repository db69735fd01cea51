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
        h = hashlib.sha256()
        with source.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        digest = h.hexdigest()
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
        h = hashlib.sha256()
        with self.path_for(digest).open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        if h.hexdigest() != digest:
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
