"""Hookline: durable, signed webhook delivery on Temporal (settings, registry, processes)."""
