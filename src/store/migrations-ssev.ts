import type { Migration } from './migrations.ts';

/**
 * Schema version 4: SSEV (eDelivery), the second channel behind the records-system API.
 *
 * - `documents.channel_reason`: why the gateway chose SEOS or SSEV for a document (JSON {code, bg, en}).
 * - `ssev_messages`: every SSEV message id this gateway sent (direction 'out', one per document) or took from
 *   its inbox (direction 'in'). The primary key is what makes "each message taken once, even across restarts"
 *   hold: an inbound message is claimed (INSERT) before it is opened or downloaded, and stored (state 'stored',
 *   document_id set) in the same transaction as its inbound document. A claim whose process died is taken over
 *   after a lease expires.
 * - `ssev_profiles`: a cache of recipient lookups (identifier + target group → profile), so a retry does not
 *   search SSEV again and an operator can see which profile a document went to.
 */
export const SSEV_MIGRATION: Migration = {
  version: 4,
  name: 'SSEV messages, profile cache, channel reason',
  sql: `
    ALTER TABLE documents ADD COLUMN channel_reason TEXT;
    CREATE INDEX documents_channel ON documents (channel, direction, status);

    CREATE TABLE ssev_messages (
      direction     TEXT NOT NULL CHECK (direction IN ('in', 'out')),
      message_id    INTEGER NOT NULL,                  -- SSEV's message id (the same in the REST and SOAP APIs)
      api           TEXT NOT NULL CHECK (api IN ('rest', 'soap')),
      document_id   TEXT REFERENCES documents (id),
      -- out: sent | delivered | unconfirmed (status polling gave up) ; in: claimed | stored | refused
      state         TEXT NOT NULL CHECK (state IN ('sent', 'delivered', 'unconfirmed', 'claimed', 'stored', 'refused')),
      claim_owner   TEXT,                              -- in: the process run that claimed it
      claimed_at    TEXT,
      attempts      INTEGER NOT NULL DEFAULT 0,        -- in: take attempts; out: status checks
      last_error    TEXT,                              -- an error code and technical detail, never content
      ssev_rnu      TEXT,                              -- the RNU SSEV keeps for the message (it may differ from ours)
      date_sent     TEXT,                              -- as SSEV reports it
      date_received TEXT,                              -- as SSEV reports it: the recipient opened it (delivered)
      next_check_at TEXT,                              -- out: when the status poller looks again
      created_at    TEXT NOT NULL,
      updated_at    TEXT NOT NULL,
      PRIMARY KEY (direction, message_id)
    );
    CREATE INDEX ssev_messages_document ON ssev_messages (document_id);
    CREATE INDEX ssev_messages_pending ON ssev_messages (direction, state, next_check_at);

    CREATE TABLE ssev_profiles (
      identifier      TEXT NOT NULL,                   -- ЕГН/ЛНЧ/ЕИК as looked up (personal data: never logged)
      kind            TEXT NOT NULL CHECK (kind IN ('person', 'legal-entity', 'institution')),
      profile_id      INTEGER,                         -- REST profile id; NULL for the SOAP API (it addresses by identifier)
      target_group_id INTEGER,
      name            TEXT NOT NULL,
      api             TEXT NOT NULL CHECK (api IN ('rest', 'soap')),
      fetched_at      TEXT NOT NULL,
      PRIMARY KEY (identifier, kind, api)
    );
  `,
};
