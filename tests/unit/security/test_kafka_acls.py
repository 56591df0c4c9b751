"""Kafka ACLs per principal: a partner writes its own ingress and reads its own deliveries, nothing more."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.runtime import topics
from hub.security.acls import AclBinding, kafka_acls_commands, partner_acls, service_acls, strimzi_users

pytestmark = pytest.mark.unit
LUCERNE = "CH/MUN/1061/einwohnerdienste"
KRIENS = "CH/MUN/1059/einwohnerdienste"


def _allowed(bindings: list[AclBinding], resource: str, operation: str) -> bool:
    """Kafka's rule: a literal name matches exactly, a prefixed one by prefix."""
    return any(
        b.operation == operation
        and (b.name == resource if b.pattern == "literal" else resource.startswith(b.name))
        for b in bindings
    )


def test_a_partner_may_write_only_its_own_ingress_and_read_only_its_own_deliveries() -> None:
    lucerne = partner_acls(LUCERNE)
    assert _allowed(lucerne, topics.ingress_topic(LUCERNE), "Write")
    assert _allowed(lucerne, topics.ingress_topic(LUCERNE), "Describe")
    assert not _allowed(lucerne, topics.ingress_topic(KRIENS), "Write")  # cannot publish as Kriens
    assert not _allowed(lucerne, topics.INGRESS, "Write")  # the shared ingress is not for partners
    assert not _allowed(lucerne, topics.ingress_topic(LUCERNE), "Read")
    assert _allowed(lucerne, topics.delivery_topic(LUCERNE), "Read")
    assert _allowed(lucerne, f"partner.{LUCERNE}", "Read")  # its consumer group
    assert not _allowed(lucerne, topics.delivery_topic(KRIENS), "Read")
    assert not _allowed(lucerne, topics.delivery_topic(LUCERNE), "Write")  # cannot forge deliveries
    assert not _allowed(lucerne, topics.INGRESS, "Read")  # cannot read what other partners send
    internal = [topics.ADMIN, topics.IDENTITY_REQUESTS, topics.IDENTITY_RESULTS, topics.NOTIFICATION_REQUESTS]
    for topic in internal:
        assert not _allowed(lucerne, topic, "Read")
        assert not _allowed(lucerne, topic, "Write")
    assert {b.principal for b in lucerne} == {"partner.ch.mun.1061.einwohnerdienste"}


def test_services_are_limited_to_hub_topics_and_their_own_groups() -> None:
    registry = service_acls("registry")
    assert _allowed(registry, topics.delivery_topic(LUCERNE), "Write")
    assert _allowed(registry, "hub.registry.ingress", "Read")
    # Every partner's ingress topic, also one of a partner registered later, by prefix.
    stated = [b for b in registry if b.name == topics.INGRESS_PREFIX]
    assert {(b.pattern, b.operation) for b in stated} == {("prefixed", "Read"), ("prefixed", "Describe")}
    assert _allowed(registry, topics.ingress_topic("CH/CAN/LU/lustat-runtime"), "Read")
    assert not any(b.name == topics.INGRESS_PREFIX for b in service_acls("identity"))
    groups = [b for b in registry if b.resource_type == "group"]
    assert [g.name for g in groups] == ["hub.registry."]
    assert not any(b.resource_type == "topic" and not b.name.startswith("hub.") for b in registry)


def test_kafka_acls_lines_and_strimzi_users_carry_the_same_bindings() -> None:
    bindings = partner_acls(LUCERNE) + service_acls("notifications")
    lines = kafka_acls_commands(bindings, "kafka:9093")
    assert len(lines) == len(bindings)
    wanted = (
        "--allow-principal 'User:partner.ch.mun.1061.einwohnerdienste' --operation Write "
        "--topic 'hub.ingress.ch.mun.1061.einwohnerdienste' --resource-pattern-type literal"
    )
    assert sum(wanted in line for line in lines) == 1
    documents = [json.loads(d) for d in strimzi_users(bindings).split("---\n") if d.strip()]
    assert {d["metadata"]["name"] for d in documents} == {
        "partner.ch.mun.1061.einwohnerdienste",
        "hub-notifications",
    }
    partner = next(d for d in documents if d["metadata"]["name"].startswith("partner."))
    assert partner["kind"] == "KafkaUser"
    assert partner["spec"]["authentication"] == {"type": "scram-sha-512"}
    assert len(partner["spec"]["authorization"]["acls"]) == len(partner_acls(LUCERNE))


def test_strimzi_users_name_their_cluster_and_use_the_v1_api() -> None:
    text = strimzi_users(partner_acls(LUCERNE), cluster="lucerne-kafka")
    documents = [json.loads(d) for d in text.split("---\n") if d]
    assert [d["apiVersion"] for d in documents] == ["kafka.strimzi.io/v1"]  # Strimzi 1.0 serves only v1
    assert documents[0]["metadata"]["labels"] == {"strimzi.io/cluster": "lucerne-kafka"}
    services = strimzi_users(service_acls("registry"))
    patterns = {
        a["resource"]["patternType"] for a in json.loads(services[4:])["spec"]["authorization"]["acls"]
    }
    assert patterns == {"prefix"}  # Strimzi's word for Kafka's "prefixed"
    with pytest.raises(ValueError, match="resource name"):
        strimzi_users(partner_acls(LUCERNE), cluster="Lucerne Kafka")


def test_hub_acls_takes_the_cluster_name_and_can_leave_the_service_users_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from services.registry import cli

    partners = [{"partner_id": LUCERNE, "delivery_topic": topics.delivery_topic(LUCERNE)}]
    monkeypatch.setattr(cli, "_rows", lambda sql: partners)
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))

    def run(*argv: str) -> list[dict[str, Any]]:
        args = parser.parse_args(["acls", "--format", "strimzi", *argv])
        assert args.func(args) == 0
        return [json.loads(d) for d in capsys.readouterr().out.split("---\n") if d.strip()]

    everyone = run("--cluster", "lucerne-kafka")
    assert {d["metadata"]["name"] for d in everyone} == {
        "hub-identity",
        "hub-registry",
        "hub-notifications",
        "partner.ch.mun.1061.einwohnerdienste",
    }
    assert {d["metadata"]["labels"]["strimzi.io/cluster"] for d in everyone} == {"lucerne-kafka"}
    partners_only = run("--partners-only")
    assert [d["metadata"]["name"] for d in partners_only] == ["partner.ch.mun.1061.einwohnerdienste"]
    assert partners_only[0]["metadata"]["labels"] == {"strimzi.io/cluster": "hub"}
