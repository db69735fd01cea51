import pytest

from tunix_rt_pipelines.core.artifacts import ArtifactIntegrityError
from tunix_rt_pipelines.registry.download import download
from tunix_rt_pipelines.registry.versions import alias_history, get_version, list_versions, register_version


def register(engine, artifacts, digest, name="smoke"):
    return register_version(engine, artifacts, name=name, checkpoint_digest=digest, evaluation_id=None,
                            metrics={"primary_score": 0.3}, config={"lr": 1e-3}, provenance={"dataset_digest": "d"},
                            actor="test")


def test_registering_the_same_checkpoint_twice_returns_the_same_version(engine, artifacts, checkpoint):
    digest = checkpoint(b"weights-1")
    first, created = register(engine, artifacts, digest)
    again, created_again = register(engine, artifacts, digest)
    assert (created, created_again) == (True, False) and again == first and first.version == 1


def test_versions_count_up_and_candidate_follows_the_newest(engine, artifacts, checkpoint):
    register(engine, artifacts, checkpoint(b"one"))
    second, _ = register(engine, artifacts, checkpoint(b"two"))
    assert get_version(engine, "smoke@candidate") == second and second.label == "smoke:2"
    assert [v["aliases"] for v in list_versions(engine, "smoke")] == [["candidate"], []]
    assert len(alias_history(engine, "smoke", "candidate")) == 2


def test_a_checkpoint_missing_from_the_store_is_not_registered(engine, artifacts):
    with pytest.raises(FileNotFoundError):
        register(engine, artifacts, "f" * 64)


def test_download_writes_the_files_and_verifies_them(engine, artifacts, checkpoint, tmp_path):
    register(engine, artifacts, checkpoint(b"weights"))
    folder = download(engine, artifacts, "smoke:1", tmp_path / "out")
    assert folder.name == "smoke-v1" and (folder / "model.safetensors").read_bytes() == b"weights"


def test_download_refuses_a_tampered_file_and_leaves_nothing(engine, artifacts, checkpoint, tmp_path):
    version, _ = register(engine, artifacts, checkpoint(b"weights"))
    import hashlib
    blob = artifacts.path_for(hashlib.sha256(b"weights").hexdigest())
    blob.chmod(0o644)
    blob.write_bytes(b"weightz")
    with pytest.raises(ArtifactIntegrityError, match="does not match its sha256"):
        download(engine, artifacts, version.id[:12], tmp_path / "out")
    assert not (tmp_path / "out" / "smoke-v1").exists()


def test_unknown_versions_are_a_lookup_error(engine):
    with pytest.raises(LookupError, match="no model version"):
        get_version(engine, "smoke@champion")
