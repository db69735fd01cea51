import os

import pytest

from tunix_rt_pipelines.core.artifacts import ArtifactIntegrityError, ArtifactStore


def test_same_content_same_name_stored_once(tmp_path):
    store = ArtifactStore(tmp_path)
    a = store.put_bytes(b"hello")
    assert store.put_bytes(b"hello") == a
    assert store.get_bytes(a) == b"hello"
    assert len(list((tmp_path / "sha256").rglob("*"))) == 2  # one folder, one blob


def test_tampered_blob_is_refused(tmp_path):
    store = ArtifactStore(tmp_path)
    digest = store.put_bytes(b"weights")
    path = store.path_for(digest)
    os.chmod(path, 0o644)
    path.write_bytes(b"evil")
    with pytest.raises(ArtifactIntegrityError):
        store.get_bytes(digest)
    with pytest.raises(ArtifactIntegrityError):
        store.verify(digest)


def test_names_that_are_not_digests_are_refused(tmp_path):
    with pytest.raises(ValueError):
        ArtifactStore(tmp_path).path_for("../../etc/passwd")


def test_put_file_matches_put_bytes(tmp_path):
    src = tmp_path / "f.bin"
    src.write_bytes(b"x" * 3_000_000)
    store = ArtifactStore(tmp_path / "store")
    assert store.put_file(src) == store.put_bytes(b"x" * 3_000_000)
