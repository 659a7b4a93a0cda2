"""Delivery orchestration: the delivery workflow (``workflows.delivery``), its retry schedule
(``workflows.retry_settings``), bulk recovery and housekeeping workflows.

Submodules are imported where used: ``hookline.settings`` needs the retry schedule without
pulling the workflows (and through them the activities) in.
"""
