import type { Migration } from './migrations.ts';

/**
 * Schema version 8: small content in the database (store/content-store.ts, SmallContentInDatabase). Rows of the
 * spool and of the evidence archive, by content address; larger content stays in files.
 */
export const CONTENT_BLOBS_MIGRATION: Migration = {
  version: 8,
  name: 'small content in the database',
  sql: `
    CREATE TABLE content_blobs (
      store  TEXT NOT NULL,
      sha256 TEXT NOT NULL,
      bytes  BLOB NOT NULL,
      PRIMARY KEY (store, sha256)
    );
  `,
};
