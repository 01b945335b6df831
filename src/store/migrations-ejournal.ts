import type { Migration } from './migrations.ts';

/** Schema version 3: eJournal events. */
export const EJOURNAL_MIGRATION: Migration = {
  version: 3,
  name: 'eJournal events',
  sql: `
    SELECT 1;
  `,
};
