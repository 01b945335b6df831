import type { Migration } from './migrations.ts';

/**
 * Schema version 2: the records-system API's keys. A key is `sgw_<id>_<secret>`; only the SHA-256 of the
 * secret is stored (the secret is 32 random bytes, so a slow password hash would add nothing but CPU per
 * request). `name` is the connector's name as IT staff chose it; it is shown in `apikey list`, never logged.
 */
export const API_MIGRATION: Migration = {
  version: 2,
  name: 'records-system API: API keys',
  sql: `
    CREATE TABLE api_keys (
      id            TEXT PRIMARY KEY,                  -- 16 lowercase hex characters, public (part of the key)
      name          TEXT NOT NULL,                     -- the connector, e.g. "archimed"
      role          TEXT NOT NULL CHECK (role IN ('connector', 'operator', 'auditor')),
      secret_sha256 TEXT NOT NULL,                     -- lowercase hex SHA-256 of the secret part
      created_at    TEXT NOT NULL,
      revoked_at    TEXT,
      last_used_at  TEXT
    );
    CREATE INDEX api_keys_name ON api_keys (name);
    -- The inbox pages through received documents in arrival order.
    CREATE INDEX documents_arrival ON documents (direction, created_at, id);
  `,
};
