"""The service runtime every service runs in: consumers, outbox and inbox, dead letters,
telemetry, migrations, Kafka and PostgreSQL plumbing, settings."""
