"""Workflows (``hookline.workflows``): deterministic orchestration only. The delivery
workflow, the fan-out, bulk recovery and the attempt-log purge.

May import the contracts and the activities they run (never the API or the CLI); their names,
inputs and signals live in ``hookline.contracts``. Submodules are imported where used.
"""
