"""Activities (``hookline.activities``): everything a workflow does with side effects.
Signing and posting attempts (``delivery``), endpoint health and operator events, fan-out
batches, bulk recovery and housekeeping.

May import the contracts, config, storage, Temporal plumbing and the delivery core; never
workflows, the API or the CLI. Submodules are imported where used.
"""
