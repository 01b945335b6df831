import type { Migration } from './migrations.ts';

/** Schema version 2: records-system API: API keys, webhooks. */
export const API_MIGRATION: Migration = {
  version: 2,
  name: 'records-system API: API keys, webhooks',
  sql: `
    SELECT 1;
  `,
};
