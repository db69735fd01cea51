"""Lineage over the running webserver's GraphQL API: from a registered model version back to the traces.

Walks ``dependencyKeys`` upstream from ``model_version/<config>`` one ``assetNodes`` query per level,
reading each asset's latest materialization metadata, and checks that the digests and ids recorded
at each step name the step before it.
"""

from __future__ import annotations

import json

import pytest

from tunix_rt_pipelines_tests.deployment.tiny_graph import DATASET, TINY

ASSET_NODES = """
query($keys: [AssetKeyInput!]) {
  assetNodes(assetKeys: $keys) {
    assetKey { path }
    dependencyKeys { path }
    assetMaterializations(limit: 1) {
      runId
      metadataEntries {
        label
        ... on TextMetadataEntry { text }
        ... on IntMetadataEntry { intValue }
        ... on FloatMetadataEntry { floatValue }
        ... on BoolMetadataEntry { boolValue }
        ... on JsonMetadataEntry { jsonString }
        ... on PathMetadataEntry { path }
      }
    }
  }
}
"""
ROOTS = {"dev_reasoning", "synthetic_arithmetic", "ingested_trace_file"}


def entry_value(entry: dict):  # noqa: ANN201
    for field in ("text", "intValue", "floatValue", "boolValue", "path"):
        if field in entry:
            return entry[field]
    if "jsonString" in entry:
        return json.loads(entry["jsonString"])
    return None


def walk_upstream(deployment, start: str) -> dict[str, dict]:
    """Every asset upstream of ``start`` (itself included): its deps and latest materialization."""
    nodes: dict[str, dict] = {}
    frontier = [start]
    while frontier:
        data = deployment.gql(ASSET_NODES, keys=[{"path": key.split("/")} for key in frontier])
        assert {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]} == set(frontier)
        for node in data["assetNodes"]:
            mats = node["assetMaterializations"]
            nodes["/".join(node["assetKey"]["path"])] = {
                "deps": sorted("/".join(d["path"]) for d in node["dependencyKeys"]),
                "run_id": mats[0]["runId"] if mats else None,
                "md": {e["label"]: entry_value(e) for e in mats[0]["metadataEntries"]} if mats else None,
            }
        frontier = sorted({d for key in frontier for d in nodes[key]["deps"]} - set(nodes))
    return nodes


@pytest.fixture(scope="module")
def lineage(deployment) -> dict[str, dict]:
    return walk_upstream(deployment, f"model_version/{TINY}")


def test_lineage_from_the_model_version_reaches_every_trace_source(lineage):
    roots = {key for key, node in lineage.items() if not node["deps"]}
    assert ROOTS <= roots, roots
    assert lineage[f"dataset/{DATASET}"]["deps"] == sorted(ROOTS)
    # The path the registered weights took, each step depending on the one before it.
    chain = [f"model_version/{TINY}", f"evaluation/{TINY}/trained", f"predictions/{TINY}/trained",
             f"checkpoint/{TINY}", f"base_model/{TINY}", f"dataset/{DATASET}", "dev_reasoning"]
    for downstream, upstream in zip(chain, chain[1:]):
        assert upstream in lineage[downstream]["deps"], (downstream, lineage[downstream]["deps"])


def test_each_step_of_the_lineage_records_the_digest_of_the_step_before(lineage, deployment):
    md = {key: node["md"] for key, node in lineage.items()}
    version, evaluation = md[f"model_version/{TINY}"], md[f"evaluation/{TINY}/trained"]
    predictions, checkpoint = md[f"predictions/{TINY}/trained"], md[f"checkpoint/{TINY}"]
    base, dataset = md[f"base_model/{TINY}"], md[f"dataset/{DATASET}"]
    assert version["checkpoint_digest"] == checkpoint["checkpoint_digest"]
    assert version["evaluation_id"] == evaluation["evaluation_id"]
    assert evaluation["predictions_sha256"] == predictions["predictions_sha256"]
    assert evaluation["model_digest"] == predictions["model_digest"] == checkpoint["checkpoint_digest"]
    assert checkpoint["base_model_digest"] == base["model_digest"]
    assert checkpoint["dataset_digest"] == base["dataset_digest"] == dataset["digest"]
    provenance = version["provenance"]
    assert provenance["dataset_digest"] == dataset["digest"]
    assert provenance["trace_ids_digest"] == dataset["trace_ids_digest"]
    assert provenance["checkpoint_digest"] == checkpoint["checkpoint_digest"]
    assert version["gate_passed"] is True and version["version"] == f"{TINY}:1"
    # The generated traces the dataset was cut from were materialised; the other sources are defined
    # upstream but were not part of this run.
    assert md["dev_reasoning"] is not None
    assert md["synthetic_arithmetic"] is None and md["ingested_trace_file"] is None
    # Everything from traces to registration came from the one main run.
    runs = {node["run_id"] for key, node in lineage.items() if node["md"] is not None}
    assert runs == {deployment.main_run_id}
