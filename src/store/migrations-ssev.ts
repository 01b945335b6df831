import type { Migration } from './migrations.ts';

/** Schema version 4: SSEV messages. */
export const SSEV_MIGRATION: Migration = {
  version: 4,
  name: 'SSEV messages',
  sql: `
    SELECT 1;
  `,
};
