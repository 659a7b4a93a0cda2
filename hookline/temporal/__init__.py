"""Temporal plumbing: the one way processes connect to Temporal, the payload encryption codec,
and the embedded dev server. May import ``hookline.contracts``, ``hookline.config`` and
``hookline.storage`` (the key parser)."""
