"""The manifest renderer of make deploy-check: Kustomize's semantics for the features it supports."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from deploy.check.kustomize import KustomizeError, build

ROOT = Path(__file__).resolve().parents[3]


def _write(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


BASE = {
    "base/kustomization.yaml": """
        resources: [app.yaml]
        labels:
        - pairs: {app.kubernetes.io/part-of: demo}
          includeTemplates: true
        configMapGenerator:
        - name: env
          literals: [cluster=one]
          options:
            disableNameSuffixHash: true
            annotations: {config.kubernetes.io/local-config: "true"}
        """,
    "base/app.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, labels: {tier: front}}
        spec:
          replicas: 1
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
              - name: app
                image: demo:1.0
                env:
                - {name: A, value: "1"}
                - {name: HOST, value: one-rw}
              volumes:
              - name: ca
                secret: {secretName: one-ca}
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {name: shared}
        """,
}


def test_an_overlay_patches_names_images_replicas_and_namespaces_like_kustomize(tmp_path: Path) -> None:
    _write(tmp_path, BASE)
    _write(
        tmp_path,
        {
            "prod/kustomization.yaml": """
                namespace: prod
                resources: [../base]
                images: [{name: demo, newName: registry.example/demo, newTag: "2.0"}]
                replicas: [{name: web, count: 3}]
                patches:
                - path: env.yaml
                - target: {kind: Deployment, labelSelector: "tier in (front, back)"}
                  patch: |-
                    - {op: add, path: /spec/template/spec/containers/0/env/-, value: {name: C, value: "3"}}
                replacements:
                - source: {kind: ConfigMap, name: env, fieldPath: data.cluster}
                  targets:
                  - select: {kind: Deployment, name: web}
                    fieldPaths:
                    - spec.template.spec.volumes.[name=ca].secret.secretName
                    - spec.template.spec.containers.[name=app].env.[name=HOST].value
                    options: {delimiter: "-", index: 0}
                """,
            "prod/env.yaml": """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: web}
                spec:
                  template:
                    spec:
                      containers:
                      - name: app
                        env:
                        - {name: A, value: "10"}
                        - {name: B, value: "2"}
                """,
        },
    )
    # The overlay changes the cluster name at its source; the base's value is "one".
    (tmp_path / "prod/kustomization.yaml").write_text(
        (tmp_path / "prod/kustomization.yaml").read_text()
        + "configMapGenerator:\n- name: env\n  literals: [cluster=two]\n  behavior: create\n"
        "  options: {disableNameSuffixHash: true}\n"
    )
    with pytest.raises(KustomizeError, match="defined twice"):  # kustomize, too, refuses a duplicate
        build(tmp_path / "prod")
    (tmp_path / "prod/kustomization.yaml").write_text(
        (tmp_path / "prod/kustomization.yaml").read_text().split("configMapGenerator:")[0]
    )
    objects = build(tmp_path / "prod")
    assert [o["kind"] for o in objects] == ["Deployment", "Namespace"]  # local-config dropped
    web, namespace = objects
    assert web["metadata"]["namespace"] == "prod"
    assert "namespace" not in namespace["metadata"]  # cluster-scoped
    assert web["metadata"]["labels"] == {"tier": "front", "app.kubernetes.io/part-of": "demo"}
    assert web["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] == "demo"
    assert web["spec"]["selector"] == {"matchLabels": {"app": "web"}}  # includeSelectors is off
    assert web["spec"]["replicas"] == 3
    (container,) = web["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example/demo:2.0"
    assert container["env"] == [
        {"name": "A", "value": "10"},  # merged by name
        {"name": "HOST", "value": "one-rw"},
        {"name": "B", "value": "2"},
        {"name": "C", "value": "3"},
    ]
    assert web["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] == "one-ca"


def test_replacements_carry_a_value_into_every_target(tmp_path: Path) -> None:
    _write(tmp_path, BASE)
    kustomization = tmp_path / "base/kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("cluster=one", "cluster=lucerne")
        + textwrap.dedent("""
            replacements:
            - source: {kind: ConfigMap, name: env, fieldPath: data.cluster}
              targets:
              - select: {kind: Deployment}
                fieldPaths:
                - spec.template.spec.volumes.[name=ca].secret.secretName
                - spec.template.spec.containers.[name=app].env.[name=HOST].value
                options: {delimiter: "-", index: 0}
              - select: {kind: Deployment}
                fieldPaths:
                - metadata.labels.[example.org/cluster]
                options: {create: true}
            """)
    )
    (web, _) = build(tmp_path / "base")
    assert web["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] == "lucerne-ca"
    assert web["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"] == "lucerne-rw"
    assert web["metadata"]["labels"]["example.org/cluster"] == "lucerne"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"base/kustomization.yaml": "resources: [app.yaml]\nhelmCharts: []\n"}, "unsupported fields"),
        ({"base/kustomization.yaml": "resources: [missing.yaml]\n"}, "does not exist"),
        (
            {"base/kustomization.yaml": "resources: [app.yaml]\nconfigMapGenerator: [{name: x}]\n"},
            "hashes are not implemented",
        ),
        (
            {"base/kustomization.yaml": "resources: [app.yaml]\npatches: [{patch: '[]', target: {kind: X}}]"},
            "matches nothing",
        ),
        ({"base/kustomization.yaml": "resources: [../outside.yaml]\n"}, "outside the kustomization root"),
    ],
)
def test_what_the_renderer_does_not_do_fails_instead_of_rendering_something_else(
    tmp_path: Path, change: dict[str, str], error: str
) -> None:
    _write(
        tmp_path, {**BASE, **change, "outside.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}
    )
    with pytest.raises(KustomizeError, match=error):
        build(tmp_path / "base")


def test_the_production_overlay_renders_with_the_cluster_names_everywhere() -> None:
    objects = build(ROOT / "deploy/kubernetes/overlays/production")
    kafka = next(o for o in objects if o["kind"] == "Kafka")
    assert kafka["metadata"]["name"] == "lucerne-kafka"
    strimzi = [o for o in objects if o["apiVersion"].startswith("kafka.strimzi.io/") and o["kind"] != "Kafka"]
    assert {o["metadata"]["labels"]["strimzi.io/cluster"] for o in strimzi} == {"lucerne-kafka"}
    settings = next(
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "hub-settings"
    )
    assert settings["data"]["HUB_KAFKA_BOOTSTRAP_SERVERS"] == "lucerne-kafka-kafka-bootstrap:9093"
    assert settings["data"]["DATABASE_HOST"] == "lucerne-hub-db-rw"
    assert {o["metadata"].get("namespace") for o in objects} == {"lucerne-hub"}
    assert not any(o["metadata"]["name"] == "environment" for o in objects)
