/**
 * Versioned schema migrations, applied at boot by openDatabase. Append new ones; never edit an applied one.
 * Times are ISO-8601 UTC text; GUIDs are stored lowercase with braces; booleans are 0/1.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

import { API_MIGRATION } from './migrations-api.ts';
import { CONTENT_BLOBS_MIGRATION } from './migrations-content.ts';
import { COUNTERS_MIGRATION } from './migrations-counters.ts';
import { EJOURNAL_MIGRATION } from './migrations-ejournal.ts';
import { SSEV_MIGRATION } from './migrations-ssev.ts';

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'participants, documents, messages, statuses, outbox, delivery log',
    sql: `
      -- The local copy of the SEOS registry (synced) merged with participants from the configuration (static).
      CREATE TABLE participants (
        guid              TEXT PRIMARY KEY,              -- lowercase, braced
        eik               TEXT NOT NULL,
        name              TEXT NOT NULL,
        parent_guid       TEXT,
        certificate_sn    TEXT,                          -- as the registry gives it (hex)
        certificate_sn_norm TEXT,                        -- uppercase hex without separators and leading zeros
        status            TEXT NOT NULL,                 -- Active | Inactive | TemporarilyInactive
        endpoint_url      TEXT,                          -- chosen by the protocol's service-selection rules
        phone             TEXT,
        email             TEXT,
        services_json     TEXT NOT NULL DEFAULT '[]',
        last_change       TEXT,                          -- the registry's LastChange for this entity
        source            TEXT NOT NULL,                 -- registry | static
        synced_at         TEXT NOT NULL
      );
      CREATE INDEX participants_eik ON participants (eik);
      CREATE INDEX participants_sn ON participants (certificate_sn_norm);
      CREATE TABLE registry_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);

      -- One row per document per counterparty and direction: what we sent (out) and what we received (in).
      CREATE TABLE documents (
        id                 TEXT PRIMARY KEY,             -- the gateway's id
        direction          TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        document_guid      TEXT NOT NULL,
        counterparty_guid  TEXT NOT NULL,
        counterparty_eik   TEXT NOT NULL,
        counterparty_name  TEXT NOT NULL,
        channel            TEXT NOT NULL DEFAULT 'seos',
        status             TEXT NOT NULL,                -- DS_* or the gateway's own: PENDING, SENDING, SENT_FAILED
        our_number         TEXT, our_date TEXT,          -- our registration number/date
        their_number       TEXT, their_date TEXT,        -- the counterparty's number/date
        rejection_reason   TEXT,
        expected_close_date TEXT,
        kind               TEXT,
        about              TEXT,
        external_id        TEXT,                         -- the records system's own id
        idempotency_key    TEXT,
        rnu                TEXT,
        message_guid       TEXT,                         -- the registration request that carried it
        acknowledged_at    TEXT,                         -- inbox: the records system took it
        created_at         TEXT NOT NULL,
        updated_at         TEXT NOT NULL,
        UNIQUE (direction, document_guid, counterparty_guid)
      );
      CREATE INDEX documents_status ON documents (direction, status, created_at);
      CREATE UNIQUE INDEX documents_external ON documents (external_id) WHERE external_id IS NOT NULL;
      CREATE UNIQUE INDEX documents_idempotency ON documents (idempotency_key) WHERE idempotency_key IS NOT NULL;

      CREATE TABLE attachments (
        document_id  TEXT NOT NULL REFERENCES documents (id),
        position     INTEGER NOT NULL,
        file_name    TEXT NOT NULL,
        mime_type    TEXT NOT NULL,
        comment      TEXT,
        sha256       TEXT NOT NULL,                      -- the spool file's name: content-addressed
        size         INTEGER NOT NULL,
        PRIMARY KEY (document_id, position)
      );

      -- Every SEOS message sent or received, by MessageGUID; the exact wire bytes are archived by SHA-256.
      CREATE TABLE messages (
        direction     TEXT NOT NULL CHECK (direction IN ('in', 'out')),
        message_guid  TEXT NOT NULL,
        message_type  TEXT NOT NULL,
        document_id   TEXT REFERENCES documents (id),
        counterparty_guid TEXT NOT NULL,
        wire_sha256   TEXT NOT NULL,
        reply_sha256  TEXT,
        created_at    TEXT NOT NULL,
        PRIMARY KEY (direction, message_guid)
      );
      CREATE INDEX messages_document ON messages (document_id);

      CREATE TABLE status_history (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        document_id  TEXT NOT NULL REFERENCES documents (id),
        status       TEXT NOT NULL,
        at           TEXT NOT NULL,
        source       TEXT NOT NULL,                      -- peer | records-system | gateway | operator
        detail       TEXT
      );
      CREATE INDEX status_history_document ON status_history (document_id, id);

      -- The transactional outbox: every delivery the gateway owes, durable before anyone is told it was accepted.
      CREATE TABLE outbox (
        id             TEXT PRIMARY KEY,
        kind           TEXT NOT NULL,                    -- seos-document | seos-status-push | seos-status-poll | webhook | ...
        document_id    TEXT REFERENCES documents (id),
        destination    TEXT NOT NULL,                    -- participant GUID, URL or queue key
        payload_sha256 TEXT,                             -- archived signed bytes to (re)send
        payload_json   TEXT,
        state          TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'dead')),
        attempts       INTEGER NOT NULL DEFAULT 0,    -- attempts that counted against the retry budget
        job_seq        INTEGER NOT NULL DEFAULT 0,    -- bumped on every scheduling; a queue job carries it, stale jobs are ignored
        next_attempt_at TEXT NOT NULL,
        last_error     TEXT,
        created_at     TEXT NOT NULL,
        updated_at     TEXT NOT NULL
      );
      CREATE INDEX outbox_pending ON outbox (state, next_attempt_at);
      CREATE INDEX outbox_document ON outbox (document_id);

      -- Health of each destination: after repeated transport failures it is 'down' and only probed.
      CREATE TABLE destinations (
        id                   TEXT PRIMARY KEY,
        state                TEXT NOT NULL CHECK (state IN ('up', 'down')),
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        down_since           TEXT,
        next_probe_at        TEXT,
        last_error           TEXT,
        updated_at           TEXT NOT NULL
      );

      CREATE TABLE attempts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        outbox_id   TEXT NOT NULL REFERENCES outbox (id),
        at          TEXT NOT NULL,
        outcome     TEXT NOT NULL,                       -- delivered | rejected | transport-failure | duplicate | ...
        detail      TEXT,
        duration_ms INTEGER
      );
      CREATE INDEX attempts_outbox ON attempts (outbox_id, id);

      -- The auditors' record: append-only and hash-chained (hash = SHA-256(prev_hash || canonical entry JSON)).
      CREATE TABLE delivery_log (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        at         TEXT NOT NULL,
        entry_json TEXT NOT NULL,
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL
      );
      CREATE TRIGGER delivery_log_no_update BEFORE UPDATE ON delivery_log BEGIN SELECT RAISE(ABORT, 'the delivery log is append-only'); END;
      CREATE TRIGGER delivery_log_no_delete BEFORE DELETE ON delivery_log BEGIN SELECT RAISE(ABORT, 'the delivery log is append-only'); END;
    `,
  },
  API_MIGRATION,
  EJOURNAL_MIGRATION,
  SSEV_MIGRATION,
  COUNTERS_MIGRATION,
  CONTENT_BLOBS_MIGRATION,
];
