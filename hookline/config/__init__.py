"""Configuration: Hookline's one settings object (``HOOKLINE_*``), read once at start and
passed down, and the event loop it names. May import ``hookline.contracts`` only."""
