-- Run once by the postgres image, as the superuser, when its data volume is first created
-- (docker-compose.yml mounts this directory at /docker-entrypoint-initdb.d).
--
-- Temporal: a login role owning its two databases; deploy/temporal/setup.sh creates the
-- tables in them (the visibility schema adds the btree_gin extension, which a database
-- owner may create on PostgreSQL 13+).
-- Hookline: a login role owning the registry database; Hookline creates its tables at start.
--
-- The passwords are examples, matching docker-compose.yml: change both places for real use.

CREATE ROLE temporal WITH LOGIN PASSWORD 'temporal';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;

CREATE ROLE hookline WITH LOGIN PASSWORD 'hookline';
CREATE DATABASE hookline OWNER hookline;
