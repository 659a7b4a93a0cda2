"""Contracts: what crosses a process boundary (workflow and activity inputs and results,
signal payloads, memo keys, search attributes, workflow and activity names, statuses, ids) and
the pure rules every layer applies (signing, header and destination rules, retry settings).

Imports nothing of Hookline's: everything may import it. Changing a name or a field here can
break running workflows; see ``tests/test_workflow_replay.py``.
"""
