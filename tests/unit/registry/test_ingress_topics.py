"""Per-partner ingress topics: their names, the registry's pattern, their one dead-letter
topic, and the binding of each topic to its partner."""

from __future__ import annotations

import re

import pytest
from faststream._internal.utils.path import Address
from faststream.kafka.subscriber.usecase import KAFKA_ADDRESS_SYNTAX

from hub.runtime import topics
from hub.runtime.deadletter import dead_letter_topic
from services.registry.errors import NotAuthorized
from services.registry.ingress import ForeignIngressTopic, check_topic_owner

pytestmark = pytest.mark.unit
LUCERNE = "CH/MUN/1061/einwohnerdienste"
KRIENS = "CH/MUN/1059/einwohnerdienste"
SOURCE = "urn:ch:lu:hub:partner:"


def _reads(pattern: str, topic: str) -> bool:
    """What aiokafka does with a subscription pattern: ``re.match`` against every topic name,
    after FastStream has turned the declared pattern into its broker address."""
    address = Address(pattern, KAFKA_ADDRESS_SYNTAX).broker_address
    return re.compile(address).match(topic) is not None


def test_a_partners_ingress_topic_uses_the_slug_of_its_delivery_topic() -> None:
    assert topics.ingress_topic(LUCERNE) == "hub.ingress.ch.mun.1061.einwohnerdienste"
    assert topics.ingress_topic(LUCERNE).removeprefix(topics.INGRESS_PREFIX) == topics.delivery_topic(
        LUCERNE
    ).removeprefix(topics.DELIVERY_PREFIX)


def test_faststream_hands_the_pattern_to_kafka_unchanged() -> None:
    for shared in (False, True):
        pattern = topics.ingress_pattern(shared=shared)
        assert Address(pattern, KAFKA_ADDRESS_SYNTAX).broker_address == pattern


def test_the_registry_reads_every_partner_ingress_but_never_a_dead_letter_topic() -> None:
    pattern = topics.ingress_pattern(shared=False)
    assert _reads(pattern, topics.ingress_topic(LUCERNE))
    assert _reads(pattern, topics.ingress_topic("CH/CAN/LU/lustat-runtime"))  # registered later
    assert not _reads(pattern, topics.INGRESS)  # the shared topic is off
    assert not _reads(pattern, "hub.ingress-dlt")
    assert not _reads(pattern, "hub.ingressX.ch.mun.1061")
    assert not _reads(pattern, topics.delivery_topic(LUCERNE))


def test_with_the_shared_ingress_on_the_registry_also_reads_hub_ingress() -> None:
    pattern = topics.ingress_pattern(shared=True)
    assert _reads(pattern, topics.INGRESS)
    assert _reads(pattern, topics.ingress_topic(LUCERNE))
    assert not _reads(pattern, "hub.ingress-dlt")
    assert not topics.is_partner_ingress(topics.INGRESS)  # and binds no sender there


def test_every_ingress_topic_dead_letters_to_the_one_hub_ingress_dlt() -> None:
    assert dead_letter_topic(topics.ingress_topic(LUCERNE)) == "hub.ingress-dlt"
    assert dead_letter_topic(topics.INGRESS) == "hub.ingress-dlt"
    assert dead_letter_topic(topics.delivery_topic(LUCERNE)) == topics.delivery_topic(LUCERNE) + "-dlt"


def test_a_partner_may_publish_on_its_own_ingress_topic() -> None:
    check_topic_owner(topics.ingress_topic(LUCERNE), SOURCE + LUCERNE)


def test_an_event_claiming_another_partner_than_the_topics_owner_is_not_authorized() -> None:
    with pytest.raises(ForeignIngressTopic, match="carries only its own events") as refused:
        check_topic_owner(topics.ingress_topic(KRIENS), SOURCE + LUCERNE)
    assert isinstance(refused.value, NotAuthorized)  # audited as "not-authorized"
    with pytest.raises(ForeignIngressTopic):
        check_topic_owner(topics.ingress_topic(KRIENS), "urn:ch:lu:hub:service:registry")


def test_a_source_that_names_no_partner_is_refused_saying_what_a_source_looks_like() -> None:
    """A partner's own event with its bare id as ce_source: the refusal says what is expected,
    rather than that the partner wrote on someone else's topic."""
    with pytest.raises(ForeignIngressTopic, match=r"names no partner.*urn:ch:lu:hub:partner:<partner id>"):
        check_topic_owner(topics.ingress_topic(KRIENS), KRIENS)


def test_the_shared_ingress_binds_no_sender() -> None:
    check_topic_owner(topics.INGRESS, SOURCE + LUCERNE)
    check_topic_owner(topics.INGRESS, SOURCE + KRIENS)
