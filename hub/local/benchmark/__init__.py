"""The bench service of ``hub bench`` (see ``hub.local.bench``): only its own schema lives here.

``hub.local.benchmark.migrations`` creates the ``effects`` table in the ``bench`` schema, so the
measured hop writes a real effect row next to its inbox and outbox rows.
"""
