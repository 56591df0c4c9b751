"""Composition root of the registry: which topics it reads, which handler gets what, and the
adapter every handler and worker works through, with the keys it needs and the service
runtime's cache of what rarely changes (``services.registry.lookups``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from contracts import CATALOG, NotificationStatusChanged, PseudonymsIssued, SetSubscription
from contracts.identity import PartnerKeyRegistered, PartnerKeyRevoked
from hub.audit.anchor import HeadAnchor
from hub.audit.key import load_audit_key
from hub.runtime import topics
from hub.runtime.consumer import Handler, Route
from hub.runtime.kafka import ensure_topics
from hub.runtime.metrics import ServiceMetrics
from hub.runtime.outbox import OutboxEmitter
from hub.runtime.service import ServiceContext, ServiceDefinition, Worker
from hub.security.key_files import hub_signing_key
from hub.security.secrets import audit_key_secret, hub_signing_secret, master_key_secret
from services.registry import admin, handlers, ingress, partner_keys, refusals, test_cases
from services.registry.adapters.postgres import PostgresRegistry
from services.registry.adapters.postgres.lookup_notices import LookupNotices
from services.registry.adapters.postgres.operations import metrics, partner_topic_rows
from services.registry.domain import ProcessDefinition, Processes, load_processes
from services.registry.escalation import Escalator
from services.registry.figures import NoFigures
from services.registry.lookups import LookupCache
from services.registry.partner_keys import IngressPolicy
from services.registry.settings import RegistrySettings

NAME = "registry"
PARTNER_REGISTERED = "ch.lu.hub.identity.partner-registered.v1"
PARTNER_STATUS_CHANGED = "ch.lu.hub.identity.partner-status-changed.v1"


def _processes(ctx: ServiceContext) -> Processes:
    processes = load_processes()
    if RegistrySettings().case_deadline_s is not None:
        processes = Processes(
            ProcessDefinition.model_validate(
                {**p.model_dump(), "deadline_s": RegistrySettings().case_deadline_s}
            )
            for p in processes.by_case_type.values()
        )
    return processes


def lookup_cache() -> LookupCache:
    """Partners, their keys, subscriptions and the catalogue, held for ``HUB_REGISTRY_CACHE_TTL_S``
    at most; what drops them sooner is in ``services.registry.lookups``."""
    return LookupCache(ttl_s=RegistrySettings().registry_cache_ttl_s)


def adapter(ctx: ServiceContext, lookups: LookupCache | None = None) -> PostgresRegistry:
    """The registry's tables, with the vault's master key and the audit chain's key: every
    delivery is sealed into the chain, and the key is a file, never in the database."""
    return PostgresRegistry(
        master_key=ctx.master_key,
        audit_key=load_audit_key(ctx.settings, create=True),
        figures=CaseMetrics(ctx.metrics) if ctx.metrics is not None else NoFigures(),
        lookups=lookups,
    )


# From minutes (a test delivery) to the weeks a relocation may take.
CASE_LATENCY_BUCKETS_S = (60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400)


class CaseMetrics:
    """The registry's case figures on the service's /metrics."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._latency = metrics.histogram(
            "hub_case_latency_seconds",
            "From a case's report to its completion.",
            ["case_type"],
            CASE_LATENCY_BUCKETS_S,
        )
        self._escalated = metrics.counter(
            "hub_cases_escalated", "Cases that missed their deadline and were escalated.", ["case_type"]
        )

    def case_completed(self, case_type: str, seconds: float) -> None:
        self._latency.labels(case_type).observe(seconds)

    def case_escalated(self, case_type: str) -> None:
        self._escalated.labels(case_type).inc()


def partner_event_types(processes: Processes) -> set[str]:
    """Everything partners may send: openings, milestones and rejections of every case type."""
    types = {"ch.lu.hub.case.rejected.v1", "ch.lu.hub.case.action-required.v1"}
    for process in processes.by_case_type.values():
        types.add(process.opened_by.event_type)
        types.update(m.event_type for m in process.milestones)
    return types


def _topic_creator(ctx: ServiceContext) -> admin.CreateTopic:
    async def create(topic: str) -> None:
        await ensure_topics(ctx.settings, [topic])

    return create


def routes(ctx: ServiceContext, lookups: LookupCache | None = None) -> Sequence[Route]:
    """The service's subscriptions; every route's units of work share ``lookups``. Without it
    (routes built apart from a service runtime) they read everything from the database: a
    cache needs the runtime's listener (``workers``) to hear of changes made elsewhere."""
    registry = adapter(ctx, lookups)
    processes = _processes(ctx)
    # Operations are told of a case's party slot that no partner fills.
    ops_email = RegistrySettings().ops_email
    on_partner_event: Handler = functools.partial(
        handlers.on_partner_event,
        processes=processes,
        policy=IngressPolicy.from_settings(ctx.settings),
        ops_email=ops_email,
    )
    partner_mirror: dict[str, Handler] = {
        PartnerKeyRegistered.event_type: partner_keys.mirror_key_registered,
        PartnerKeyRevoked.event_type: partner_keys.mirror_key_revoked,
    }
    if PARTNER_REGISTERED in CATALOG:
        partner_mirror |= {
            PARTNER_REGISTERED: functools.partial(admin.mirror_partner, create_topic=_topic_creator(ctx)),
            PARTNER_STATUS_CHANGED: admin.mirror_partner_status,
        }
    return (
        Route(
            # Every partner's own ingress topic, those of partners registered later too, in one
            # group; the shared hub.ingress only if HUB_SHARED_INGRESS. Dead letters of all of
            # them go to hub.ingress-dlt.
            topic=topics.INGRESS,
            pattern=topics.ingress_pattern(shared=RegistrySettings().shared_ingress),
            group_id="hub.registry.ingress",
            # Every catalogued type reaches the handler, which refuses what partners may not send.
            handlers={event_type: on_partner_event for event_type in CATALOG},
            # ... and every refusal is sealed into the audit chain with its dead letter.
            on_refused=refusals.recorder(functools.partial(registry.on, source=ctx.source)),
            # The topic an event arrived on must be its sender's own, before anything else.
            admit=ingress.admit,
            unit_of_work=registry,
        ),
        Route(
            topic=topics.IDENTITY_RESULTS,
            group_id="hub.registry.identity-results",
            handlers={
                PseudonymsIssued.event_type: functools.partial(
                    handlers.deliver_with_pseudonyms, processes=processes
                )
            },
            unit_of_work=registry,
        ),
        Route(
            topic=topics.NOTIFICATION_STATUS,
            group_id="hub.registry.notification-status",
            handlers={NotificationStatusChanged.event_type: handlers.record_notification_status},
            unit_of_work=registry,
        ),
        Route(
            topic=topics.ADMIN,
            group_id="hub.registry.admin",
            # Applied only if a trusted operator or an operations partner provably sent it; a case
            # type's opening event only as a test case a trusted operator opened.
            handlers={
                SetSubscription.event_type: admin.subscription_handler(ctx.settings, processes),
                **test_cases.test_case_handlers(ctx.settings, processes, ops_email=ops_email),
            },
            ignore_unknown_types=True,
            unit_of_work=registry,
        ),
        Route(
            topic=topics.IDENTITY_PARTNERS,
            group_id="hub.registry.partners",
            handlers=partner_mirror,
            ignore_unknown_types=True,
            unit_of_work=registry,
        ),
    )


def workers(ctx: ServiceContext, lookups: LookupCache | None = None) -> Sequence[Worker]:
    """The escalation loop and the audit anchor; with ``lookups``, also the listener that drops
    them when another replica, an operator or a migration changes what they hold."""
    escalator = Escalator(
        adapter(ctx, lookups).transactional(ctx.pool, source=ctx.source),
        _processes(ctx),
        ops_email=RegistrySettings().ops_email,
        interval_s=RegistrySettings().escalation_check_interval_s,
    )
    # The chain's head, published for operations to keep outside the database.
    anchor = HeadAnchor(
        ctx.pool,
        functools.partial(OutboxEmitter, source=ctx.source),
        interval_s=RegistrySettings().audit_anchor_interval_s,
    )
    if lookups is None:
        return (escalator.run, anchor.run)
    notices = LookupNotices(ctx.pool, lookups, schema=NAME)
    return (escalator.run, anchor.run, notices.run)


async def partner_topics(ctx: ServiceContext) -> Sequence[str]:
    """Every partner's delivery topic exists before anything is delivered to it, and its
    ingress topic before it publishes (partners may not create topics); the shared ingress
    exists if it is read."""
    partners = await partner_topic_rows(ctx.pool)
    shared = [topics.INGRESS] if RegistrySettings().shared_ingress else []
    return [
        *shared,
        *(delivery for _, delivery in partners),
        *(topics.ingress_topic(partner_id) for partner_id, _ in partners),
    ]


def definition() -> ServiceDefinition:
    # One cache per service runtime (each runtime loads its definition): its routes, its
    # escalator and its listener share it, and nothing is held between runtimes.
    lookups = lookup_cache()
    return ServiceDefinition(
        name=NAME,
        migrations_package="services.registry.migrations",
        topics=(topics.IDENTITY_REQUESTS, topics.NOTIFICATION_REQUESTS, topics.OPS, topics.AUDIT_HEADS),
        routes=lambda ctx: routes(ctx, lookups),
        workers=lambda ctx: workers(ctx, lookups),
        dynamic_topics=partner_topics,
        # Everything the registry publishes carries the hub's signature: partners verify deliveries.
        signing_key=hub_signing_key,
        metrics=metrics,
        # The audit chain: the registry's role appends and reads, never rewrites.
        append_only_tables=("audit_log",),
        secrets=lambda s: (master_key_secret(s), audit_key_secret(s), hub_signing_secret(s)),
    )
