"""Storage: the registry of apps, endpoints and accepted events, the attempt log, API keys,
secrets sealed at rest, schema migrations and owner-only files, on SQLite or PostgreSQL.

``registry.Registry`` holds one repository per aggregate (``apps``, ``endpoints``, ``events``)
beside the attempt log and the API keys; ``entities`` holds the values they return and
``engine`` the database engine. May import ``hookline.contracts`` and ``hookline.config``."""
