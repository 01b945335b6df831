import type { Migration } from './migrations.ts';

/**
 * Schema version 3: eJournal events and the RNUs the gateway knows.
 *
 * One row per status change of a service, keyed (and deduplicated) by (rnu, status, occurred_at). Each has its
 * outbox row (kind `ejournal-event`), inserted in the same transaction. `rnu_seq` numbers the events of one RNU
 * in the order they were recorded; delivery order is (occurred_at, rnu_seq). The ordering rule and the claim
 * columns are explained in src/ejournal/ordering.ts.
 */
export const EJOURNAL_MIGRATION: Migration = {
  version: 3,
  name: 'eJournal events',
  sql: `
    -- Every RNU the gateway has seen or obtained, and where it came from (given | central | demo).
    CREATE TABLE ejournal_rnus (
      rnu            TEXT PRIMARY KEY,                 -- opaque, case-sensitive, at most 64 characters
      origin         TEXT NOT NULL CHECK (origin IN ('given', 'central', 'demo')),
      demo           INTEGER NOT NULL DEFAULT 0,       -- invented in demo mode: never for the real eJournal
      service_code   TEXT,                             -- of the first event; automatic events reuse it
      created_at     TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE ejournal_events (
      id               INTEGER PRIMARY KEY,            -- rows are never deleted, so ids are never reused
      event_uid        TEXT NOT NULL,                  -- a random UUID sent to eJournal as the event id / Idempotency-Key
      rnu              TEXT NOT NULL,
      rnu_seq          INTEGER NOT NULL,               -- 1, 2, ... per RNU in the order recorded (tie-break of equal times);
                                                       -- MAX + 1 inside the recording (write) transaction
      status           TEXT NOT NULL,
      occurred_at      TEXT NOT NULL,                  -- when the stage happened: ISO-8601 UTC with milliseconds
      administration   TEXT NOT NULL,                  -- ЕИК or OID
      service_code     TEXT NOT NULL,
      document_reg_number TEXT,
      description      TEXT,
      channel          TEXT,                           -- seos | ssev | counter | email | ... (statistics)
      source           TEXT NOT NULL,                  -- records-system | gateway | operator
      lifecycle        TEXT,                           -- seos.registered, ... for events the gateway raised itself
      document_id      TEXT REFERENCES documents (id),
      demo             INTEGER NOT NULL DEFAULT 0,
      -- delivery: pending -> sending (claimed) -> delivered | rejected; pending again after a transient failure;
      -- skipped by an operator (a dead event given up). "dead" is the outbox row's state (the engine's verdict).
      state            TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'delivered', 'rejected', 'skipped')),
      waiting          INTEGER NOT NULL DEFAULT 0,     -- parked behind an earlier event of its RNU; woken when that resolves
      defers           INTEGER NOT NULL DEFAULT 0,     -- consecutive waits (the short wait doubles)
      claim_seq        INTEGER,                        -- outbox job_seq of the job that claimed it
      claim_expires_at TEXT,
      first_sent_at    TEXT,                           -- first claim: from then on eJournal may have it
      delivered_at     TEXT,
      remote_outcome   TEXT,                           -- accepted | duplicate | rejected
      remote_id        TEXT,
      out_of_order     INTEGER NOT NULL DEFAULT 0,     -- recorded after a later event of its RNU had been sent
      outbox_id        TEXT NOT NULL REFERENCES outbox (id), -- 1:1; the outbox row's payload names this row's id
      recorded_at      TEXT NOT NULL,
      updated_at       TEXT NOT NULL,
      UNIQUE (rnu, status, occurred_at)
    );
    -- Every index is one more page (often a random one) written by each event's commits, so only what needs it:
    -- the queries of one RNU (dedup, sequence, ordering, timeline) use the unique (rnu, status, occurred_at) index
    -- and sort the RNU's few rows; the handler finds its event by id (in the outbox payload); statistics by period.
    CREATE INDEX ejournal_events_period ON ejournal_events (occurred_at);
    CREATE INDEX ejournal_events_document ON ejournal_events (document_id) WHERE document_id IS NOT NULL;
    CREATE INDEX documents_rnu ON documents (rnu) WHERE rnu IS NOT NULL;
  `,
};
