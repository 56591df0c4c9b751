-- Roles of the hub for deploy/compose.yaml, as in production (deploy/README.md, "Running on
-- Kubernetes"): the superuser "postgres" only administers; hub_owner owns the database "hub" and
-- runs the migrations (`hub db migrate`); each service logs in with a role of its own, which the
-- migrations give rights on its own schema only. Runs once, when the data volume is created.
-- Local passwords only: never reuse them anywhere else.
CREATE ROLE hub_owner LOGIN PASSWORD 'change-me-locally';
CREATE ROLE hub_identity LOGIN PASSWORD 'change-me-locally';
CREATE ROLE hub_registry LOGIN PASSWORD 'change-me-locally';
CREATE ROLE hub_notifications LOGIN PASSWORD 'change-me-locally';
CREATE DATABASE hub OWNER hub_owner;
\connect hub
-- Nothing is created in "public" but by its owner; the services use their own schemas.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
