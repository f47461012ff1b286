"""The platform's database roles, least privilege: what each part may do, and no more.

- ``platform_owner`` owns the platform's schemas and tables; runs (loads, checks, replays,
  extracts) connect as it. It may create schemas in the warehouse database, and nothing else
  beyond its own objects: not a superuser, it cannot create roles or databases.
- ``platform_migrator`` is the migrate job's login. It acts as the owner (member of it, with
  ``role`` set to it at login), so what a migration creates is the owner's and only the owner
  may alter or drop the tables, while the sessions and the ledger name the migrator.
- ``platform_reader`` is for consumers: it may read every schema and table the owner makes
  (default privileges), and write nothing.
- ``dagster_instance`` owns the Dagster instance database (runs, events, schedules), which no
  other role may even connect to.

Every login has a default ``statement_timeout`` (``STATEMENT_TIMEOUTS``).

The statements are idempotent; ``platform-db`` applies them to the embedded server, and
``platform-db roles-sql`` prints them for an external one (docs/operations.md).
"""

from psycopg import sql

OWNER = "platform_owner"
MIGRATOR = "platform_migrator"
READER = "platform_reader"
INSTANCE = "dagster_instance"
ROLES = (OWNER, MIGRATOR, READER, INSTANCE)
# No statement of any login runs forever, whatever its client forgot to set: a default per role,
# which a session may lower (the warehouse resource sets 15 min, migrations their own per step).
STATEMENT_TIMEOUTS = {OWNER: "60min", MIGRATOR: "60min", READER: "5min", INSTANCE: "15min"}

# Objects made before the roles existed (by the superuser) are handed to the role that owns
# their database's objects now: schemas, tables, views, sequences and functions, outside the
# system's own schemas. Run in each database; the role is given as a format argument.
_ADOPT = """
DO $adopt$ DECLARE r record; BEGIN
  FOR r IN SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_'
      AND nspname NOT IN ('information_schema', 'public') AND nspowner <> {role}::regrole LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, {role});
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      AND c.relkind IN ('r', 'p', 'v') AND c.relowner <> {role}::regrole LOOP
    EXECUTE format('ALTER TABLE %s OWNER TO %I', r.name, {role});
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' AND c.relkind = 'S'
      AND c.relowner <> {role}::regrole
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
  LOOP
    EXECUTE format('ALTER SEQUENCE %s OWNER TO %I', r.name, {role});
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
      AND p.proowner <> {role}::regrole LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.name, {role});
  END LOOP;
END $adopt$
"""


def _create_role(role: str) -> sql.Composable:
    """The role as a login without any special attribute, created if missing."""
    return sql.SQL(
        "DO $role$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN"
        " CREATE ROLE {role} LOGIN; END IF; END $role$; ALTER ROLE {role} LOGIN NOSUPERUSER"
        " NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
    ).format(name=sql.Literal(role), role=sql.Identifier(role))


def cluster_statements(warehouse_database: str, instance_database: str) -> list[sql.Composable]:
    """The roles and their database-level rights: run once per server, as a superuser."""
    warehouse, instance = sql.Identifier(warehouse_database), sql.Identifier(instance_database)
    owner, migrator = sql.Identifier(OWNER), sql.Identifier(MIGRATOR)
    reader = sql.Identifier(READER)
    return [
        *(_create_role(role) for role in ROLES),
        *(
            sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                sql.Identifier(role), sql.Literal(timeout)
            )
            for role, timeout in STATEMENT_TIMEOUTS.items()
        ),
        sql.SQL("GRANT {} TO {}").format(owner, migrator),
        sql.SQL("ALTER ROLE {} SET role = {}").format(migrator, sql.Literal(OWNER)),
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(warehouse),
        sql.SQL("GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {} TO {}").format(warehouse, owner),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(warehouse, reader),
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(instance),
        sql.SQL("ALTER DATABASE {} OWNER TO {}").format(instance, sql.Identifier(INSTANCE)),
    ]


def warehouse_statements() -> list[sql.Composable]:
    """The owner's objects and the reader's rights on them: run in the warehouse database."""
    owner, reader = sql.Identifier(OWNER), sql.Identifier(READER)
    return [
        sql.SQL(_ADOPT).format(role=sql.Literal(OWNER)),
        # A one-part asset key's table lives in public, which only the database's owner may use.
        sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(owner),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(reader),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT USAGE ON SCHEMAS TO {}").format(
            owner, reader
        ),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT SELECT ON TABLES TO {}").format(
            owner, reader
        ),
        sql.SQL(
            "DO $grant$ DECLARE r record; BEGIN FOR r IN SELECT nspname FROM pg_namespace"
            " WHERE nspowner = {owner}::regrole LOOP"
            " EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', r.nspname, {reader});"
            " EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', r.nspname, {reader});"
            " END LOOP; END $grant$"
        ).format(owner=sql.Literal(OWNER), reader=sql.Literal(READER)),
    ]


def instance_statements() -> list[sql.Composable]:
    """The Dagster storage's tables handed to its role: run in the instance database."""
    return [sql.SQL(_ADOPT).format(role=sql.Literal(INSTANCE))]
