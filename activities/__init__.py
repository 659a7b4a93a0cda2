"""What happens outside workflows: signing and posting attempts (``activities.delivery``),
endpoint health, recovery and housekeeping. Submodules are imported where used."""
