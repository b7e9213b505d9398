-- Tamper-evident audit log (docs/AUDIT_LOGGING.md is the specification).
--
-- The hash chain and the Merkle tree are computed by the core, not here: a trigger computing
-- them serialises writers (measured p99 ≈ 14 ms at 8 writers). The database only refuses
-- changes: UPDATE, DELETE and TRUNCATE are refused by triggers that fire ALWAYS (so
-- session_replication_role = replica does not skip them), and the application's role
-- `pganalytics_app` holds no such privilege. Two sanctioned removals exist, each a SECURITY
-- DEFINER function: retention (only up to a signed seal) and GDPR erasure (only the personal
-- fields, which the content hash covers through a salted digest).

-- Who an erased subject was is gone; that they were erased is kept. `external` actors are the
-- people and systems named by events sent in through `audit log` and the API.
ALTER TABLE actors ADD COLUMN erased_at TIMESTAMPTZ;
ALTER TABLE actors DROP CONSTRAINT actors_kind_check;
ALTER TABLE actors ADD CONSTRAINT actors_kind_check
    CHECK (kind IN ('os_user', 'api_token', 'db_role', 'system', 'external'));

-- One log per repository: its id names the external checkpoints.
CREATE TABLE audit_log_state (
    singleton   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    log_id      UUID NOT NULL DEFAULT gen_random_uuid(),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO audit_log_state DEFAULT VALUES;

-- `id` is the event's position in the chain, assigned by the core (dense, from 1).
-- Personal fields (ip_address, user_agent, personal_details, and the actor's name in `actors`)
-- are covered by `personal_digest` = SHA-256(personal_salt || canonical personal fields), so
-- erasing them (and the salt) leaves the content hash verifiable.
ALTER TABLE audit_logs
    ADD COLUMN resource_id      TEXT,
    ADD COLUMN outcome          VARCHAR(20) NOT NULL
                                CHECK (outcome IN ('success', 'failure', 'denied')),
    ADD COLUMN source           VARCHAR(20) NOT NULL
                                CHECK (source IN ('cli', 'desktop', 'daemon', 'api', 'system')),
    ADD COLUMN subject_id       UUID,
    ADD COLUMN personal_details JSONB,
    ADD COLUMN personal_salt    BYTEA,
    ADD COLUMN personal_digest  CHAR(64) NOT NULL;

-- No foreign key to actors: its check locks the actor's row (FOR KEY SHARE, a WAL record)
-- for every event, and the core only writes ids it got from `actors`; verification reads
-- actors with an outer join, so a missing actor shows as a changed event.
ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_actor_id_fkey;

CREATE INDEX idx_audit_logs_subject ON audit_logs (subject_id) WHERE subject_id IS NOT NULL;

-- Checkpoints (signed tree heads), retention seals and verification results share the board's
-- table; `kind` tells them apart. For a checkpoint: batch_hash = Merkle root, log_count = tree
-- size, signature = base64 of the signature over `signed_note`.
ALTER TABLE audit_log_verification
    ADD COLUMN kind             VARCHAR(20) NOT NULL DEFAULT 'checkpoint'
                                CHECK (kind IN ('checkpoint', 'seal', 'verification')),
    ADD COLUMN tree_size        BIGINT,
    ADD COLUMN chain_head       VARCHAR(64),
    ADD COLUMN algorithm        VARCHAR(20),
    ADD COLUMN key_fingerprint  VARCHAR(80),
    ADD COLUMN signed_note      TEXT,
    ADD COLUMN frontier         TEXT,
    ADD COLUMN sealed_through   BIGINT,
    ADD COLUMN checked_from     BIGINT,
    ADD COLUMN checked_to       BIGINT,
    ADD COLUMN first_bad_id     BIGINT,
    ADD COLUMN problem          TEXT;

CREATE INDEX idx_audit_log_verification_kind ON audit_log_verification (kind, tree_size);

ALTER TABLE audit_log_retention_policy ADD COLUMN archive_location TEXT;

CREATE FUNCTION audit_logs_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('pganalytics.audit_retention', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'the audit log is append-only: DELETE refused'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'old events are removed only by `pganalytics audit retention apply`, after a signed seal';
    ELSIF TG_OP = 'UPDATE' THEN
        IF current_setting('pganalytics.audit_erasure', true) = 'on'
           AND NEW.ip_address IS NULL AND NEW.user_agent IS NULL
           AND NEW.personal_details IS NULL AND NEW.personal_salt IS NULL
           AND (to_jsonb(NEW) - ARRAY['ip_address', 'user_agent', 'personal_details', 'personal_salt'])
             = (to_jsonb(OLD) - ARRAY['ip_address', 'user_agent', 'personal_details', 'personal_salt'])
        THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'the audit log is append-only: UPDATE refused'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'personal data is erased only by `pganalytics audit erase-subject`';
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_logs_append_only
    BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_guard();
CREATE TRIGGER audit_logs_no_truncate
    BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_guard();
ALTER TABLE audit_logs ENABLE ALWAYS TRIGGER audit_logs_append_only;
ALTER TABLE audit_logs ENABLE ALWAYS TRIGGER audit_logs_no_truncate;

CREATE FUNCTION audit_log_verification_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit checkpoints and verification results are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_verification_append_only
    BEFORE UPDATE OR DELETE ON audit_log_verification
    FOR EACH ROW EXECUTE FUNCTION audit_log_verification_guard();
CREATE TRIGGER audit_log_verification_no_truncate
    BEFORE TRUNCATE ON audit_log_verification
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_verification_guard();
ALTER TABLE audit_log_verification ENABLE ALWAYS TRIGGER audit_log_verification_append_only;
ALTER TABLE audit_log_verification ENABLE ALWAYS TRIGGER audit_log_verification_no_truncate;

-- Retention: removes events up to `through_id`, only when the newest policy allows deletion
-- and a signed seal covers them (the remaining log then verifies from the seal's frontier).
CREATE FUNCTION audit_apply_retention(through_id BIGINT) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    removed BIGINT;
BEGIN
    IF NOT COALESCE((SELECT deletion_allowed FROM audit_log_retention_policy
                     ORDER BY id DESC LIMIT 1), false) THEN
        RAISE EXCEPTION 'the retention policy does not allow deletion'
            USING HINT = 'set one with `pganalytics audit retention set --days N --allow-deletion`';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_log_verification
                   WHERE kind = 'seal' AND sealed_through >= through_id) THEN
        RAISE EXCEPTION 'no signed seal covers audit events up to %', through_id;
    END IF;
    PERFORM set_config('pganalytics.audit_retention', 'on', true);
    DELETE FROM audit_logs WHERE id <= through_id;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('pganalytics.audit_retention', 'off', true);
    RETURN removed;
END
$$;

-- GDPR erasure: nulls the personal fields (and their salt) of every event whose actor or
-- subject is `subject`, and replaces the actor's name. Content hashes stay verifiable.
CREATE FUNCTION audit_erase_subject(subject UUID) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    erased BIGINT;
BEGIN
    PERFORM set_config('pganalytics.audit_erasure', 'on', true);
    UPDATE audit_logs
       SET ip_address = NULL, user_agent = NULL, personal_details = NULL, personal_salt = NULL
     WHERE (actor_id = subject OR subject_id = subject) AND personal_salt IS NOT NULL;
    GET DIAGNOSTICS erased = ROW_COUNT;
    PERFORM set_config('pganalytics.audit_erasure', 'off', true);
    UPDATE actors SET name = 'erased:' || id::text, erased_at = now()
     WHERE id = subject AND erased_at IS NULL;
    RETURN erased;
END
$$;

REVOKE ALL ON FUNCTION audit_apply_retention(BIGINT) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_erase_subject(UUID) FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_logs, audit_log_verification FROM PUBLIC;

-- The application's role. The repository's pool switches to it on connect (SET ROLE) when it
-- exists and the login role is a member; migrations run as the login role. A login role that
-- may not create roles (an external repository with a plain owner) keeps only the triggers.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pganalytics_app')
       AND (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
        BEGIN
            CREATE ROLE pganalytics_app NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another repository on this cluster created it at the same moment
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pganalytics_app') THEN
        RETURN;
    END IF;
    IF NOT pg_has_role(current_user, 'pganalytics_app', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT pganalytics_app TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RETURN;
        END;
    END IF;
    GRANT USAGE ON SCHEMA public TO pganalytics_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO pganalytics_app;
    GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO pganalytics_app;
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_logs, audit_log_verification FROM pganalytics_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO pganalytics_app;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public
        GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO pganalytics_app;
    GRANT EXECUTE ON FUNCTION audit_apply_retention(BIGINT) TO pganalytics_app;
    GRANT EXECUTE ON FUNCTION audit_erase_subject(UUID) TO pganalytics_app;
END
$$;
