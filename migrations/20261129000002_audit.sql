-- Epic 1 tables, as on the sprint board, with timestamps that carry a time zone.
-- Integrity machinery (append-only triggers, checkpoints outside the database) comes with the
-- audit log issue in later migrations.

CREATE TABLE audit_logs (
    id              BIGSERIAL PRIMARY KEY,
    event_id        UUID NOT NULL UNIQUE,
    event_type      VARCHAR(100) NOT NULL,
    resource_type   VARCHAR(100) NOT NULL,
    action          VARCHAR(50) NOT NULL,
    actor_id        UUID NOT NULL REFERENCES actors (id),
    changes         JSONB NOT NULL,
    old_values      JSONB,
    new_values      JSONB,
    ip_address      INET,
    user_agent      TEXT,
    content_hash    VARCHAR(64) NOT NULL,
    previous_hash   VARCHAR(64),
    signature       VARCHAR(512),
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE INDEX idx_audit_logs_created_at ON audit_logs (created_at);
CREATE INDEX idx_audit_logs_actor ON audit_logs (actor_id, created_at);
CREATE INDEX idx_audit_logs_resource ON audit_logs (resource_type, action, created_at);

CREATE TABLE audit_log_verification (
    batch_id            UUID PRIMARY KEY,
    log_count           INTEGER NOT NULL,
    batch_hash          VARCHAR(64) NOT NULL,
    previous_batch_hash VARCHAR(64),
    signature           VARCHAR(512),
    verified            BOOLEAN DEFAULT FALSE,
    verified_at         TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE audit_log_retention_policy (
    id                    SERIAL PRIMARY KEY,
    retention_days        INTEGER NOT NULL CHECK (retention_days > 0),
    archive_after_days    INTEGER CHECK (archive_after_days > 0),
    deletion_allowed      BOOLEAN DEFAULT FALSE,
    compliance_framework  VARCHAR(50),
    created_at            TIMESTAMPTZ NOT NULL
);
