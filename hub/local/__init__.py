"""Tooling for one machine: embedded infrastructure, the supervisor, the demo, the
benchmark and the chaos run."""
