"""The skeleton every service runs in: pool, migrations, topics, relay, subscribers.

A service declares itself with a ``ServiceDefinition`` (its composition root builds the
routes and background workers from a ``ServiceContext``); ``ServiceRuntime`` opens the
resources in order, runs, and closes them in reverse. Nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from hub.errors import BrokerUnavailable, DatabaseUnavailable
from hub.runtime import topics
from hub.runtime.consumer import MessageProcessor, RetryLater, RetryPolicy, Route
from hub.runtime.db import create_pool
from hub.runtime.deadletter import DeadLetterWriter, dead_letter_topic
from hub.runtime.kafka import ensure_topics
from hub.runtime.kafka_security import faststream_security
from hub.runtime.metrics import ServiceMetrics
from hub.runtime.outbox import OutboxRelay, outbox_backlog
from hub.runtime.publisher import KafkaPublisher, Publisher
from hub.runtime.schemas import SchemaPlan, migrate, require_migrated, service_migrations
from hub.runtime.settings import HubSettings
from hub.security.secrets import SecretFile, master_key_secret, require_secrets
from hub.security.signing import SigningKey
from hub.vault.crypto import MasterKey
from hub.vault.master import load_master_key

log = logging.getLogger(__name__)

BACKLOG_READY_LIMIT = 10_000
_STARTUP_RETRY_FIRST_S = 0.2
_STARTUP_RETRY_MAX_S = 5.0
T = TypeVar("T")
# How soon a consumer with a pattern reads a topic created after it started.
PATTERN_METADATA_MAX_AGE_MS = 3_000
_DEFAULT_METADATA_MAX_AGE_MS = 5 * 60 * 1000  # Kafka's and FastStream's default
Worker = Callable[[asyncio.Event], Awaitable[None]]


@dataclass(frozen=True)
class ServiceContext:
    """What a composition root may hand to handlers and workers."""

    name: str
    settings: HubSettings
    pool: asyncpg.Pool
    # The vault's master key ring, loaded once at start: the adapters that seal and open
    # personal data get it from here, never from a process global.
    master_key: MasterKey
    # The process's /metrics registry, for the service's own counters and histograms; the
    # runtime always sets it (None only where a test builds a context without a runtime).
    metrics: ServiceMetrics | None = None

    @property
    def source(self) -> str:
        return service_source(self.name)


def service_source(name: str) -> str:
    return f"urn:ch:lu:hub:service:{name}"


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    migrations_package: str
    topics: tuple[str, ...]
    routes: Callable[[ServiceContext], Sequence[Route]]
    workers: Callable[[ServiceContext], Sequence[Worker]] = field(default=lambda _ctx: ())
    dynamic_topics: Callable[[ServiceContext], Awaitable[Sequence[str]]] | None = None
    # The key the relay signs every published event with (the registry: the hub's key).
    signing_key: Callable[[HubSettings], SigningKey] | None = None
    # The service's own figures for /metrics (Prometheus text lines), read on the same connection.
    metrics: Callable[[asyncpg.Connection], Awaitable[list[str]]] | None = None
    # Tables of its schema the service's role may add to and read, never change (``hub.runtime.schemas``).
    append_only_tables: tuple[str, ...] = ()
    # The secrets the service cannot start without (``hub.security.secrets``): the vault's
    # master key for every service; the registry and identity add their own.
    secrets: Callable[[HubSettings], Sequence[SecretFile]] = field(default=lambda s: (master_key_secret(s),))

    @property
    def schema(self) -> str:
        return self.name

    def schema_plan(self) -> SchemaPlan:
        return SchemaPlan(
            self.schema, service_migrations(self.name, self.migrations_package), self.append_only_tables
        )


# How long a subscriber's fetch waits when its partitions have nothing new. A fetch
# returns as soon as records are there, so this bounds idle polling, not a record's wait.
_BATCH_WAIT_MS = 100


async def _records_as_read(
    batch: tuple[ConsumerRecord[bytes, bytes], ...],
    parse: Callable[[tuple[ConsumerRecord[bytes, bytes], ...]], Awaitable[Any]],
) -> Any:
    """FastStream's batch message, with the records exactly as read.

    FastStream decodes every header as UTF-8 for its own use, and a header that is not
    would fail the whole batch inside the framework, where nothing dead-letters it. Given
    the records without headers, it decodes nothing; the handler gets the records whole
    and the envelope check dead-letters such a record with its reason.
    """
    message = await parse(tuple(replace(record, headers=()) for record in batch))
    message.raw_message = batch
    return message


async def _no_body(message: Any) -> None:
    # The handler reads the records themselves: FastStream's decoding (JSON, one body per
    # record) would only cost, and a value that is not JSON must reach the hub's own
    # validation and the dead-letter topic.
    return None


class PartitionRetries:
    """Backoff per partition: a failing record pauses its own partition, not the subscriber.

    The record is rewound (seek) and its partition paused for the backoff delay, while the
    consumer goes on with its other partitions; nothing of the paused partition is
    committed meanwhile. Attempts are counted per partition and offset.
    """

    def __init__(self) -> None:
        self._attempts: dict[TopicPartition, tuple[int, int]] = {}

    def next_attempt(self, partition: TopicPartition, offset: int) -> int:
        last_offset, attempts = self._attempts.get(partition, (offset, 0))
        return attempts + 1 if last_offset == offset else 1

    def back_off(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int, retry: RetryLater
    ) -> None:
        self._attempts[partition] = (offset, retry.attempt)
        consumer.seek(partition, offset)
        consumer.pause(partition)
        asyncio.get_running_loop().call_later(retry.delay_s, _resume, consumer, partition)

    def done(self, partition: TopicPartition) -> None:
        self._attempts.pop(partition, None)


class GroupMembership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Whether a subscriber's consumer has joined its group.

    Kafka calls ``on_partitions_assigned`` after every join, with what this member got,
    possibly nothing: with more replicas than partitions, or a pattern that matches no topic
    yet, a member is a healthy standby, not a failure. Readiness asks for the join, not
    for partitions, so such a replica does not hold up a rollout.
    """

    def __init__(self) -> None:
        self.joined = False

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.joined = True


def _resume(consumer: AIOKafkaConsumer, partition: TopicPartition) -> None:
    # After a rebalance the partition may belong to another member now: nothing to resume.
    if partition in consumer.assignment():
        consumer.resume(partition)


async def _start_subscribers_together(broker: KafkaBroker) -> None:
    """``KafkaBroker.start`` with the subscribers' group joins run concurrently.

    FastStream starts subscribers one after another, and each consumer's start waits for its
    group's first assignment (a join round that takes the broker's rebalance delay, ~5 s on
    Tansu). Every route has its own consumer group, so the joins are independent: started
    together, a service is ready after one join round instead of one per route. The broker
    is consumer-only, so there are no publishers to start.
    """
    await broker.connect()
    await asyncio.gather(*(subscriber.start() for subscriber in broker.subscribers))
    broker.running = True


class ServiceRuntime:
    def __init__(
        self,
        definition: ServiceDefinition,
        settings: HubSettings,
        *,
        publisher: Publisher | None = None,
    ) -> None:
        self.definition = definition
        self.settings = settings
        self._publisher = publisher
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._broker: KafkaBroker | None = None
        self.pool: asyncpg.Pool | None = None
        self.processors: list[MessageProcessor] = []
        self.relay: OutboxRelay | None = None
        self._memberships: list[GroupMembership] = []
        self.service_metrics = ServiceMetrics(definition.name)

    async def start(self) -> None:
        d, s = self.definition, self.settings
        # Before anything connects: a replica that invented a key would disagree with the others.
        require_secrets(s, d.secrets(s))
        deadline = asyncio.get_running_loop().time() + s.startup_wait_s
        pool: asyncpg.Pool = await self._once_reachable(
            "PostgreSQL", lambda: create_pool(s.database_dsn(), d.schema, size=s.database_pool_size), deadline
        )
        self.pool = pool
        async with pool.acquire() as conn:
            if s.migrate_on_start:
                applied = await migrate(conn, d.schema_plan())  # with the vault's shared keys
            else:
                await require_migrated(conn, d.schema_plan())
                applied = []
        master_key = load_master_key(s, create=s.local_secrets)
        log.info("%s: %d migrations applied", d.name, len(applied))
        ctx = ServiceContext(d.name, s, self.pool, master_key, self.service_metrics)
        routes = list(d.routes(ctx))
        extra = await d.dynamic_topics(ctx) if d.dynamic_topics else ()
        # A pattern names no topic to create: the topics it matches come and go with partners.
        consumed = [r.topic for r in routes if r.pattern is None]
        dead_letters = {dead_letter_topic(r.topic) for r in routes}
        await self._once_reachable(
            "Kafka", lambda: ensure_topics(s, {*d.topics, *extra, *consumed, *dead_letters}), deadline
        )
        self._publisher = self._publisher or KafkaPublisher(s, client_id=f"hub-{d.name}")
        await self._publisher.start()
        self.relay = OutboxRelay(
            self.pool,
            self._publisher,
            schema=d.schema,
            batch_size=s.outbox_batch_size,
            poll_interval_s=s.outbox_poll_interval_s,
            backoff_initial_s=s.retry_backoff_initial_s,
            backoff_max_s=s.retry_backoff_max_s,
            signing_key=d.signing_key(s) if d.signing_key is not None else None,
        )
        self._spawn(self.relay.run(self._stop), "outbox-relay")
        for worker in d.workers(ctx):
            self._spawn(worker(self._stop), getattr(worker, "__name__", "worker"))
        self._broker = self._build_broker(routes, ctx)
        await _start_subscribers_together(self._broker)
        log.info("%s: started with %d subscriptions", d.name, len(routes))

    async def _once_reachable(self, what: str, connect: Callable[[], Awaitable[T]], deadline: float) -> T:
        """``connect()``, retried while ``what`` cannot be reached, until ``deadline``.

        Dependencies restart too (a database failover, a broker's rolling restart): a
        service started meanwhile waits for them (``HUB_STARTUP_WAIT_S``) instead of exiting
        and being restarted in a loop. What still fails after the wait ends the start.
        """
        loop = asyncio.get_running_loop()
        delay = _STARTUP_RETRY_FIRST_S
        while True:
            try:
                return await connect()
            except (DatabaseUnavailable, BrokerUnavailable) as error:
                if loop.time() + delay > deadline:
                    raise
                name = self.definition.name
                log.warning("%s: %s not reachable yet, retrying in %.1fs: %s", name, what, delay, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _STARTUP_RETRY_MAX_S)

    def _build_broker(self, routes: Sequence[Route], ctx: ServiceContext) -> KafkaBroker:
        s = self.settings
        broker = KafkaBroker(
            s.bootstrap_servers(),
            client_id=f"hub-{ctx.name}",
            consumer_only=True,
            logger=logging.getLogger(f"hub.broker.{ctx.name}"),
            graceful_timeout=s.shutdown_grace_s,
            security=faststream_security(s),
            # A pattern subscription sees a new matching topic (a partner registered at
            # runtime) only at the consumer's next metadata refresh, every 5 min by default.
            # FastStream sets this per broker, not per subscriber: the other consumers of the
            # service refresh as often, a small metadata request each.
            metadata_max_age_ms=PATTERN_METADATA_MAX_AGE_MS
            if any(r.pattern for r in routes)
            else _DEFAULT_METADATA_MAX_AGE_MS,
        )
        assert self.pool is not None
        retry = RetryPolicy(s.retry_backoff_initial_s, s.retry_backoff_max_s)
        for route in routes:
            processor = MessageProcessor(
                self.pool,
                route,
                DeadLetterWriter(self.pool, max_stored_bytes=s.dead_letter_max_stored_bytes),
                source=ctx.source,
                retry=retry,
                max_message_bytes=s.max_message_bytes,
                metrics=self.service_metrics,
            )
            self.processors.append(processor)
            self._subscribe(broker, route, processor)
        return broker

    def _subscribe(self, broker: KafkaBroker, route: Route, processor: MessageProcessor) -> None:
        retrying = PartitionRetries()
        membership = GroupMembership()
        self._memberships.append(membership)
        s = self.settings
        prefix = s.topic_prefix

        @broker.subscriber(
            *([] if route.pattern else [topics.on_cluster(route.topic, prefix)]),
            pattern=topics.pattern_on_cluster(route.pattern, prefix) if route.pattern else None,
            group_id=topics.on_cluster(route.group_id, prefix),
            ack_policy=AckPolicy.MANUAL,  # we commit ourselves, after the effect is durable
            auto_offset_reset="earliest",
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            max_poll_interval_ms=300_000,
            # What the broker has for the member's partitions, up to a bound, in one go: a
            # batch costs one transaction and one offset commit, not one per record.
            batch=True,
            max_records=s.consumer_batch_max_records,
            fetch_max_bytes=s.consumer_batch_max_bytes,
            fetch_max_wait_ms=s.consumer_fetch_max_wait_ms,
            batch_timeout_ms=_BATCH_WAIT_MS,
            parser=_records_as_read,
            decoder=_no_body,
            listener=membership,
        )
        async def entrypoint(body: Any, message: KafkaMessage) -> None:
            batch = message.raw_message
            assert isinstance(batch, tuple)
            if not batch:
                return
            consumer: AIOKafkaConsumer = message.consumer
            # The hub's code sees its own names; positions and commits stay the cluster's.
            named = (
                list(batch)
                if prefix == topics.HUB_PREFIX
                else [replace(record, topic=topics.in_hub(record.topic, prefix)) for record in batch]
            )
            cluster_partition = {
                (hub_record.topic, hub_record.partition): TopicPartition(record.topic, record.partition)
                for hub_record, record in zip(named, batch, strict=True)
            }
            first_offsets: dict[TopicPartition, int] = {}
            for record in batch:
                first_offsets.setdefault(TopicPartition(record.topic, record.partition), record.offset)
            try:
                result = await processor.attempt_batch(
                    named,
                    lambda record: retrying.next_attempt(
                        cluster_partition[(record.topic, record.partition)], record.offset
                    ),
                )
            except BaseException:
                # Interrupted (shutdown) or failed outside the records: rewind, so no later
                # commit of these partitions can pass over a record of the batch.
                for partition, offset in first_offsets.items():
                    consumer.seek(partition, offset)
                raise
            commits = {
                cluster_partition[where]: offset for where, offset in result.finished_through(named).items()
            }
            held = {cluster_partition[where] for where in result.held}
            for where, (offset, retry) in result.held.items():
                retrying.back_off(consumer, cluster_partition[where], offset, retry)
            for partition in first_offsets.keys() - held:
                retrying.done(partition)
            if commits:
                await consumer.commit(commits)

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: background task %s crashed", self.definition.name, name)
                self._stop.set()

        self._tasks.append(asyncio.create_task(guarded(), name=f"{self.definition.name}:{name}"))

    async def _flush_outbox(self, budget_s: float) -> None:
        """Publish what the last records wrote, so partners need not wait for a restart.

        Best effort within ``budget_s``: whatever stays is published after the restart.
        """
        if self.relay is None or self._publisher is None:
            return
        try:
            async with asyncio.timeout(budget_s):
                while await self.relay.publish_batch():
                    pass
        except Exception as error:  # the rows stay in the outbox; nothing is lost
            log.warning("%s: outbox not flushed at shutdown: %s", self.definition.name, error)

    async def readiness(self) -> dict[str, bool | int | str]:
        """Database and broker reachable, every subscriber in its group, outbox backlog bounded."""
        checks: dict[str, bool | int | str] = {"service": self.definition.name}
        try:
            assert self.pool is not None
            async with self.pool.acquire(timeout=2) as conn:
                backlog = await outbox_backlog(conn)
            checks.update(ok_database=True, outbox_backlog=backlog, ok_backlog=backlog < BACKLOG_READY_LIMIT)
        except Exception as error:  # any failure means "not ready", with the reason shown
            checks.update(ok_database=False, database_error=str(error)[:200])
        checks["ok_broker"] = self._publisher is not None and await self._publisher.reachable()
        subscribers = list(self._broker.subscribers) if self._broker else []
        consumers = [getattr(sub, "consumer", None) for sub in subscribers]
        checks["assigned_partitions"] = sum(len(c.assignment()) for c in consumers if c is not None)
        checks["ok_groups_joined"] = bool(self._memberships) and all(m.joined for m in self._memberships)
        checks["ok_running"] = not self._stop.is_set()
        return checks

    async def metrics(self) -> str:
        """Prometheus text format (``hub.runtime.metrics``): what the processors observed, the
        consumer lag, the outbox and dead letters as the database has them, and the service's own."""
        own: list[str] = []
        self.service_metrics.set_lag(self._consumer_lag())
        if self.pool is not None:
            try:
                async with self.pool.acquire(timeout=2) as conn:
                    backlog = await outbox_backlog(conn)
                    oldest, parked, oldest_parked = await conn.fetchrow(_OUTBOX_AGES)
                    dead = await conn.fetchval("SELECT count(*) FROM dead_letters")
                    own = await self.definition.metrics(conn) if self.definition.metrics else []
            except Exception as error:  # metrics must answer even while the database is away
                log.warning("metrics without database figures: %s", error)
            else:
                self.service_metrics.set_outbox(
                    backlog=backlog,
                    oldest_s=float(oldest),
                    parked=parked,
                    oldest_parked_s=float(oldest_parked),
                )
                self.service_metrics.set_stored_dead_letters(dead)
        return self.service_metrics.render(own)

    def _consumer_lag(self) -> dict[tuple[str, str, int], int]:
        """Per assigned partition: the partition's end as last fetched, minus the next record
        to finish. A partition nothing was fetched from yet counts from its committed start."""
        lags: dict[tuple[str, str, int], int] = {}
        subscribers = list(self._broker.subscribers) if self._broker else []
        for subscriber, processor in zip(subscribers, self.processors, strict=False):
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            for partition in consumer.assignment():
                end = consumer.highwater(partition)
                if end is None:
                    continue
                hub_name = topics.in_hub(partition.topic, self.settings.topic_prefix)
                last = processor.finished_offsets.get((hub_name, partition.partition))
                done = last + 1 if last is not None else consumer.last_stable_offset(partition) or end
                lags[(processor.route.group_id, partition.topic, partition.partition)] = max(0, end - done)
        return lags

    async def wait(self) -> None:
        await self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()

    async def stop(self) -> None:
        """Drain and stop within ``shutdown_grace_s`` plus a short tail, as a whole.

        Kubernetes kills a pod ``terminationGracePeriodSeconds`` after SIGTERM, so the stop
        has one budget rather than one per phase: in-flight records get the grace period,
        then background tasks and the outbox flush share what is left of it (each at least
        ``_STOP_TAIL_S``, so a slow drain still lets the relay finish its batch and publish
        the last events). Anything cut off is safe: unpublished rows stay in the outbox,
        uncommitted records are redelivered and deduplicated by the inbox.
        """
        self._stop.set()
        deadline = asyncio.get_running_loop().time() + self.settings.shutdown_grace_s
        if self._broker is not None:
            await self._broker.stop()  # in-flight records finish and commit (shutdown_grace_s)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=_left(deadline))
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._flush_outbox(_left(deadline))
        if self._publisher is not None:
            await self._publisher.stop()
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), timeout=_STOP_TAIL_S)
            except TimeoutError:
                self.pool.terminate()  # a connection still held by a cancelled task
        log.info("%s: stopped", self.definition.name)


_STOP_TAIL_S = 1.0
_OUTBOX_AGES = """
    SELECT coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE parked_at IS NULL)), 0),
           count(*) FILTER (WHERE parked_at IS NOT NULL),
           coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE parked_at IS NOT NULL)), 0)
    FROM outbox WHERE published_at IS NULL
"""


def _left(deadline: float) -> float:
    return max(deadline - asyncio.get_running_loop().time(), _STOP_TAIL_S)
