"""Kafka ACLs that follow from the partner register: least privilege per principal.

Kafka decides who may read and write; the hub's own checks (signatures, the binding of
an ingress topic to its partner, catalogue roles, subscriptions) come on top. A partner's
principal may write its own ingress topic and read its own delivery topic with its own
consumer group, nothing else: it cannot write as another partner, read another partner's
deliveries or the hub's internal topics. Each hub service gets its own principal, limited
to the ``hub.`` topics and its own consumer groups; the registry reads every partner's
ingress topic through the prefix ``hub.ingress.``, those of partners registered later too.

Output is either ``kafka-acls.sh`` command lines or Strimzi ``KafkaUser`` resources.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from hub.runtime import topics

ResourceType = Literal["topic", "group", "cluster"]
PatternType = Literal["literal", "prefixed"]
Operation = Literal["Read", "Write", "Describe", "Create"]

PARTNER_PRINCIPAL_PREFIX = "partner."
SERVICE_PRINCIPAL_PREFIX = "hub-"


@dataclass(frozen=True, order=True)
class AclBinding:
    principal: str  # the user name (SCRAM) or certificate CN (mutual TLS), without "User:"
    resource_type: ResourceType
    name: str
    pattern: PatternType
    operation: Operation


def partner_principal(partner_id: str) -> str:
    """'CH/MUN/1061/einwohnerdienste' -> 'partner.ch.mun.1061.einwohnerdienste' (a valid user name)."""
    return PARTNER_PRINCIPAL_PREFIX + re.sub(r"[^a-z0-9-]+", ".", partner_id.lower()).strip(".")


def partner_group(partner_id: str) -> str:
    """The consumer group partners use for their deliveries (hub.local.partner_client.PartnerClient)."""
    return f"partner.{partner_id}"


def partner_acls(
    partner_id: str, delivery_topic: str | None = None, *, prefix: str = topics.HUB_PREFIX
) -> list[AclBinding]:
    """A partner's rights, on the topics of the hub whose HUB_TOPIC_PREFIX is ``prefix``."""
    principal = partner_principal(partner_id)
    delivery = topics.on_cluster(delivery_topic or topics.delivery_topic(partner_id), prefix)
    ingress = topics.on_cluster(topics.ingress_topic(partner_id), prefix)
    return sorted(
        [
            AclBinding(principal, "topic", ingress, "literal", "Write"),
            AclBinding(principal, "topic", ingress, "literal", "Describe"),
            AclBinding(principal, "topic", delivery, "literal", "Read"),
            AclBinding(principal, "topic", delivery, "literal", "Describe"),
            AclBinding(principal, "group", partner_group(partner_id), "literal", "Read"),
        ]
    )


def service_acls(service: str, *, prefix: str = topics.HUB_PREFIX) -> list[AclBinding]:
    """A hub service reads and writes the hub's topics (it creates them at start) and uses
    only consumer groups named after itself; on a shared cluster, those of its own prefix."""
    principal = SERVICE_PRINCIPAL_PREFIX + service
    # The registry's pattern subscription reads (and must describe, to see them) the partner
    # ingress topics; "hub." covers them today, stated apart so a narrower "hub." keeps them.
    ingress = (
        [
            AclBinding(principal, "topic", topics.on_cluster(topics.INGRESS_PREFIX, prefix), "prefixed", op)
            for op in ("Read", "Describe")
        ]
        if service == "registry"
        else []
    )
    return sorted(
        [
            *(
                AclBinding(principal, "topic", f"{prefix}.", "prefixed", op)
                for op in ("Read", "Write", "Describe")
            ),
            AclBinding(principal, "topic", f"{prefix}.", "prefixed", "Create"),
            AclBinding(principal, "group", f"{prefix}.{service}.", "prefixed", "Read"),
            *ingress,
        ]
    )


def kafka_acls_commands(bindings: list[AclBinding], bootstrap: str = "$BOOTSTRAP") -> list[str]:
    """One ``kafka-acls.sh --add`` line per binding (run with an admin client config)."""
    lines = []
    for b in bindings:
        resource = {"topic": "--topic", "group": "--group", "cluster": "--cluster"}[b.resource_type]
        target = f"{resource} '{b.name}'" if b.resource_type != "cluster" else resource
        lines.append(
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config admin.properties --add "
            f"--allow-principal 'User:{b.principal}' --operation {b.operation} {target} "
            f"--resource-pattern-type {b.pattern}"
        )
    return lines


DEFAULT_STRIMZI_CLUSTER = "hub"
# Kafka's own tools say "prefixed"; Strimzi's KafkaUser schema spells it "prefix".
STRIMZI_PATTERN_TYPES: dict[PatternType, str] = {"literal": "literal", "prefixed": "prefix"}
_KUBERNETES_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def strimzi_users(bindings: list[AclBinding], cluster: str = DEFAULT_STRIMZI_CLUSTER) -> str:
    """Strimzi ``KafkaUser`` resources (SCRAM-SHA-512), one per principal, as YAML.

    ``cluster`` is the name of the ``Kafka`` resource whose User Operator creates the users (the
    ``strimzi.io/cluster`` label); it differs per environment, so it is not fixed here. The API
    version is ``kafka.strimzi.io/v1``, the only one Strimzi 1.0 serves. JSON is valid YAML, so each
    document is written as JSON: no YAML library needed.
    """
    if _KUBERNETES_NAME.fullmatch(cluster) is None:
        raise ValueError(f"not a Kubernetes resource name: {cluster!r}")
    by_principal: dict[str, list[AclBinding]] = {}
    for binding in bindings:
        by_principal.setdefault(binding.principal, []).append(binding)
    documents = []
    for principal, own in sorted(by_principal.items()):
        resource = {
            "apiVersion": "kafka.strimzi.io/v1",
            "kind": "KafkaUser",
            "metadata": {"name": principal, "labels": {"strimzi.io/cluster": cluster}},
            "spec": {
                "authentication": {"type": "scram-sha-512"},
                "authorization": {
                    "type": "simple",
                    "acls": [
                        {
                            "resource": {
                                "type": b.resource_type,
                                "name": b.name,
                                "patternType": STRIMZI_PATTERN_TYPES[b.pattern],
                            }
                            if b.resource_type != "cluster"
                            else {"type": "cluster"},
                            "operations": [b.operation],
                            "host": "*",
                        }
                        for b in own
                    ],
                },
            },
        }
        documents.append(json.dumps(resource, indent=2))
    return "---\n" + "\n---\n".join(documents) + "\n"
