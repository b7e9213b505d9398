-- Foundation: who acts, what is monitored, where backups go, who may call the daemon.
-- Secrets are never stored here: passwords live in the OS keyring (or .pgpass), tokens as
-- SHA-256 hashes only.

-- Actors: OS users, API tokens, database roles and pgAnalytics itself, mapped to stable UUIDs
-- for the audit log's actor_id.
CREATE TABLE actors (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    kind        TEXT NOT NULL CHECK (kind IN ('os_user', 'api_token', 'db_role', 'system')),
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (kind, name)
);

-- Monitored PostgreSQL servers. `dsn` is libpq keyword/value form WITHOUT a password.
CREATE TABLE monitored_servers (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name                TEXT NOT NULL UNIQUE
                        CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    dsn                 TEXT NOT NULL CHECK (dsn !~* '(^|\s)password\s*='),
    password_in_keyring BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Storage targets for backups and WAL (file, s3, gcs, azblob). Credentials are not stored.
CREATE TABLE storage_targets (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name        TEXT NOT NULL UNIQUE
                CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    kind        TEXT NOT NULL CHECK (kind IN ('file', 's3', 'gcs', 'azblob')),
    url         TEXT NOT NULL,
    options     JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Bearer tokens of the daemon's HTTP API: only the SHA-256 of the token is kept.
CREATE TABLE api_tokens (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name          TEXT NOT NULL UNIQUE
                  CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    token_sha256  CHAR(64) NOT NULL UNIQUE,
    actor_id      UUID NOT NULL REFERENCES actors (id),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
