"""Which partner may publish on which ingress topic: the topic binds the sender.

Every partner publishes on its own ``hub.ingress.<partner>`` (Kafka ACLs let its principal
write there and nowhere else). The registry refuses an event on such a topic that claims
any other sender, before anything else is looked at (its inbox of seen event ids included)
and whether or not signatures are required: a correctly signed event of partner A on
partner B's topic means A's credentials or B's topic are misused, never a routine event.
The signature check that follows proves the claim; together they are two independent locks
(defence in depth).

The shared ``hub.ingress`` (read only with ``HUB_SHARED_INGRESS``) binds no sender: there
the signature alone proves who sent an event.
"""

from __future__ import annotations

from contracts import Envelope
from contracts.channels import PARTNER_SOURCE_PREFIX
from hub.runtime import topics
from services.registry.errors import ForeignIngressTopic
from services.registry.model import claimed_partner

__all__ = ["ForeignIngressTopic", "admit", "check_topic_owner"]


def check_topic_owner(topic: str, source: str) -> None:
    """Refuse unless ``source`` is the partner whose own ingress topic ``topic`` is."""
    if not topics.is_partner_ingress(topic):
        return
    claimed = claimed_partner(source)
    if claimed is None:
        # Most often a partner's own event with its bare id as the source: say what is expected.
        raise ForeignIngressTopic(
            f"event on {topic}: ce_source {source[:200]!r} names no partner; a partner's events carry "
            f"ce_source {PARTNER_SOURCE_PREFIX}<partner id>"
        )
    if topics.ingress_topic(claimed) != topic:
        raise ForeignIngressTopic(
            f"event from {source[:200]} on {topic}: a partner's ingress topic carries only its own events"
        )


def admit(topic: str, envelope: Envelope) -> None:
    """The ingress route's admission (``hub.runtime.consumer.Route.admit``): checked before the inbox,
    so that a copy of another partner's event, under that partner's source and an id the hub
    has seen, is refused as what it is rather than dropped as a repeat of the original."""
    check_topic_owner(topic, envelope.source)
