"""Signed events and keys: the signed form, Ed25519 keys, operator keys, redrive
attestations, Kafka ACLs."""
