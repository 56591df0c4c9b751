"""What /metrics serves, with prometheus_client: one registry per service process.

The runtime observes what every service shares (record processing time per route,
outcomes, dead letters, consumer lag, the outbox); a service registers its own figures
through ``ServiceMetrics.counter`` and ``histogram`` (the registry: case latency and
escalations; notifications: outcomes by channel). The names are those of
``deploy/metrics.json``, which the alert rules and the dashboard are checked against.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

# From a few milliseconds (one record, one transaction) to the retries of a database restart.
RECORD_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# From a lone record (a quiet hub) to a full batch (HUB_CONSUMER_BATCH_MAX_RECORDS) and beyond.
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)


class ServiceMetrics:
    """The metrics of one service process; ``render`` gives the Prometheus text format."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self._own: dict[str, Counter | Histogram] = {}
        ProcessCollector(registry=self.registry)
        self.record_processing = Histogram(
            "hub_record_processing_seconds",
            "Time from a record's first attempt to its committed outcome, per consumer route.",
            ["service", "route"],
            buckets=RECORD_BUCKETS_S,
            registry=self.registry,
        )
        self.records = Counter(
            "hub_consumer_records",
            "Records a subscriber finished, by outcome (processed, duplicate, skipped, dead-lettered).",
            ["service", "group", "outcome"],
            registry=self.registry,
        )
        self.batch_records = Histogram(
            "hub_consumer_batch_records",
            "Records per batch a subscriber processed in one transaction, per consumer group.",
            ["service", "group"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "hub_dead_letters",
            "Records dead-lettered, by original topic and reason.",
            ["service", "topic", "reason"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "hub_consumer_lag",
            "Records between a group's position and the partition's end, per assigned partition.",
            ["service", "group", "topic", "partition"],
            registry=self.registry,
        )
        self.outbox_backlog = self._gauge(
            "hub_outbox_backlog", "Outbox rows not yet published (parked ones apart)."
        )
        self.dead_letters_stored = self._gauge(
            "hub_dead_letters_stored", "Dead letters recorded in the service's table, since it exists."
        )
        self.outbox_oldest = self._gauge(
            "hub_outbox_oldest_unpublished_seconds", "Age of the oldest outbox row still to publish."
        )
        self.outbox_parked = self._gauge("hub_outbox_parked", "Outbox rows the broker refused for good.")
        self.outbox_oldest_parked = self._gauge(
            "hub_outbox_oldest_parked_seconds", "Age of the oldest parked outbox row."
        )

    def _gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, ["service"], registry=self.registry)

    def counter(self, name: str, documentation: str, labels: Sequence[str]) -> Counter:
        """A counter of the service's own (exposed as ``name_total``); asked for again, the same one."""
        if name not in self._own:
            self._own[name] = Counter(name, documentation, list(labels), registry=self.registry)
        found = self._own[name]
        assert isinstance(found, Counter), f"{name} is not a counter"
        return found

    def histogram(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        """A histogram of the service's own; asked for again, the same one."""
        if name not in self._own:
            self._own[name] = Histogram(
                name, documentation, list(labels), buckets=list(buckets), registry=self.registry
            )
        found = self._own[name]
        assert isinstance(found, Histogram), f"{name} is not a histogram"
        return found

    def record_finished(self, route: str, group: str, outcome: str, seconds: float) -> None:
        self.records.labels(self.service, group, outcome).inc()
        self.record_processing.labels(self.service, route).observe(seconds)

    def batch_processed(self, group: str, records: int) -> None:
        self.batch_records.labels(self.service, group).observe(records)

    def dead_lettered(self, topic: str, reason: str) -> None:
        self.dead_letters.labels(self.service, topic, reason).inc()

    def set_lag(self, lags: dict[tuple[str, str, int], int]) -> None:
        """The lag of every partition this process holds now (those it lost disappear)."""
        self.consumer_lag.clear()
        for (group, topic, partition), lag in lags.items():
            self.consumer_lag.labels(self.service, group, topic, str(partition)).set(lag)

    def set_stored_dead_letters(self, count: int) -> None:
        self.dead_letters_stored.labels(self.service).set(count)

    def set_outbox(self, *, backlog: int, oldest_s: float, parked: int, oldest_parked_s: float) -> None:
        self.outbox_backlog.labels(self.service).set(backlog)
        self.outbox_oldest.labels(self.service).set(oldest_s)
        self.outbox_parked.labels(self.service).set(parked)
        self.outbox_oldest_parked.labels(self.service).set(oldest_parked_s)

    def render(self, extra_lines: Sequence[str] = ()) -> str:
        """The text format; ``extra_lines`` are figures a service reads at scrape time."""
        text = generate_latest(self.registry).decode()
        return text + "".join(f"{line}\n" for line in extra_lines)
