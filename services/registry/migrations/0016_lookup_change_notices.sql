-- Every registry replica holds partners, their keys, subscriptions and the catalogue in
-- memory (services/registry/lookups.py). A change committed by any of them, by an operator's
-- SQL or by a migration is announced on this channel once it commits (NOTIFY is
-- transactional: a rolled-back change announces nothing), and each replica's listener drops
-- what it holds. The cache's age limit covers a replica that missed the announcement.
CREATE FUNCTION lookups_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('lookups_' || TG_TABLE_SCHEMA, TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER partners_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON partners
    FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
CREATE TRIGGER partner_keys_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON partner_keys
    FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
CREATE TRIGGER subscriptions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON catalog
    FOR EACH STATEMENT EXECUTE FUNCTION lookups_changed();
