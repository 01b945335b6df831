import type { Migration } from './migrations.ts';

/**
 * Schema version 7: named counters. The receipt number a received document gets until the records system
 * registers it was the count of received documents plus one, a scan that grew with the store; a counter row
 * incremented inside the document's transaction costs the same on the first day and after years.
 */
export const COUNTERS_MIGRATION: Migration = {
  version: 7,
  name: 'named counters (receipt numbers)',
  sql: `
    CREATE TABLE counters (
      name  TEXT PRIMARY KEY,
      value INTEGER NOT NULL
    );
    INSERT INTO counters (name, value) SELECT 'receipt', COUNT(*) FROM documents WHERE direction = 'in';
  `,
};
