"""Storage: the registry of apps, endpoints and accepted events, the attempt log, API keys,
secrets sealed at rest, schema migrations and owner-only files, on SQLite or PostgreSQL.
May import ``hookline.contracts`` and ``hookline.config``."""
