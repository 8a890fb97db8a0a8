-- Least privilege. The schemas solarx_raw, solarx_wh, solarx_meta and everything in them belong
-- to solarx_owner (NOLOGIN); migrations run as a login that is a member of it (solarx-stream
-- migrate switches to the schemas' owner for every later migration, so what they create belongs
-- to solarx_owner as well). The service runs as solarx_app (LOGIN): rows only, no DDL. It creates
-- and drops raw day partitions through SECURITY DEFINER functions owned by solarx_owner.
-- README.md, "Least privilege", lists every grant. No password here: the DBA gives the login
-- roles theirs (ALTER ROLE ... PASSWORD, or certificates, or peer authentication).

-- Roles are cluster-wide and every database of the cluster runs this file: create them only when
-- they are missing (a concurrent migration of another database may create them first).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'solarx_owner') THEN
        BEGIN
            CREATE ROLE solarx_owner NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'solarx_app') THEN
        BEGIN
            CREATE ROLE solarx_app LOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- The migrating login must be able to hand its objects to solarx_owner and to become it.
    IF NOT pg_has_role(current_user, 'solarx_owner', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT solarx_owner TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'role "%" is not a member of solarx_owner and may not make itself one',
                current_user
                USING HINT = format('As a superuser: GRANT solarx_owner TO %I;', current_user);
        END;
    END IF;
    -- A runtime role that can become the owner, or bypass privileges, would make all this moot.
    IF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = 'solarx_app')
       OR pg_has_role('solarx_app', 'solarx_owner', 'MEMBER') THEN
        RAISE EXCEPTION 'solarx_app must be an ordinary role: not a superuser, not BYPASSRLS, '
                        'not a member of solarx_owner';
    END IF;
END $$;

-- Everything in the three schemas to solarx_owner: the schemas, tables (every raw day partition
-- included), views, sequences not owned by a column, routines and free-standing types. Indexes,
-- TOAST tables, row and array types and column-owned sequences follow their owners.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT nspname FROM pg_namespace
              WHERE nspname IN ('solarx_raw', 'solarx_wh', 'solarx_meta')
                AND nspowner <> 'solarx_owner'::regrole LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO solarx_owner', r.nspname);
    END LOOP;
    FOR r IN
        SELECT c.oid::regclass AS object,
               CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                              WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                              ELSE 'TABLE' END AS kind
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('solarx_raw', 'solarx_wh', 'solarx_meta')
           AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
           AND c.relowner <> 'solarx_owner'::regrole
           AND NOT (c.relkind = 'S' AND EXISTS (
                   SELECT FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
         ORDER BY c.oid
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO solarx_owner', r.kind, r.object);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure AS object,
               CASE p.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE'
                              ELSE 'FUNCTION' END AS kind
          FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname IN ('solarx_raw', 'solarx_wh', 'solarx_meta')
           AND p.proowner <> 'solarx_owner'::regrole
         ORDER BY p.oid
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO solarx_owner', r.kind, r.object);
    END LOOP;
    FOR r IN
        SELECT t.oid::regtype AS object, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END AS kind
          FROM pg_type t
          JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname IN ('solarx_raw', 'solarx_wh', 'solarx_meta')
           AND t.typowner <> 'solarx_owner'::regrole
           AND (t.typtype IN ('e', 'r', 'd')
                OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
         ORDER BY t.oid
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO solarx_owner', r.kind, r.object);
    END LOOP;
END $$;

-- The partition functions run as solarx_owner, whatever role calls them: the runtime role creates
-- and drops raw day partitions only through them. A fixed search_path, so that nothing the caller
-- puts first (a temporary table named like a catalog) is looked up instead. ensure_partitions_for_days
-- comes with 0005 in some trees and not in others: each is changed only when it exists.
DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOREACH fn IN ARRAY ARRAY[to_regprocedure('solarx_raw.ensure_day_partitions(timestamptz,timestamptz)'),
                              to_regprocedure('solarx_raw.ensure_partitions_for_days(date[])'),
                              to_regprocedure('solarx_raw.drop_partitions_before(timestamptz)')] LOOP
        CONTINUE WHEN fn IS NULL;
        EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', fn);
    END LOOP;
END $$;

-- The runtime role: into the schemas, the rows of every table (raw day partitions included, for
-- direct reads and archives), sequences, and the functions. The ledger is read-only to it.
REVOKE ALL ON SCHEMA solarx_raw, solarx_wh, solarx_meta FROM PUBLIC;
GRANT USAGE ON SCHEMA solarx_raw, solarx_wh, solarx_meta TO solarx_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA solarx_raw, solarx_wh, solarx_meta
    TO solarx_app;
REVOKE INSERT, UPDATE, DELETE ON solarx_meta.schema_migrations FROM solarx_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA solarx_raw, solarx_wh, solarx_meta TO solarx_app;
REVOKE ALL ON ALL ROUTINES IN SCHEMA solarx_raw, solarx_wh, solarx_meta FROM PUBLIC;
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA solarx_raw, solarx_wh, solarx_meta TO solarx_app;

-- The same for what solarx_owner creates later: day partitions made by the SECURITY DEFINER
-- functions, and the objects of later migrations. No routine of solarx_owner is PUBLIC's.
ALTER DEFAULT PRIVILEGES FOR ROLE solarx_owner IN SCHEMA solarx_raw, solarx_wh, solarx_meta
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO solarx_app;
ALTER DEFAULT PRIVILEGES FOR ROLE solarx_owner IN SCHEMA solarx_raw, solarx_wh, solarx_meta
    GRANT USAGE, SELECT ON SEQUENCES TO solarx_app;
ALTER DEFAULT PRIVILEGES FOR ROLE solarx_owner REVOKE EXECUTE ON ROUTINES FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE solarx_owner IN SCHEMA solarx_raw, solarx_wh, solarx_meta
    GRANT EXECUTE ON ROUTINES TO solarx_app;
