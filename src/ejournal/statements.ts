import type { Statement } from 'better-sqlite3';
import type { Db } from '../store/database.ts';

/**
 * Prepared statements cached per connection: events are recorded and delivered thousands of times a second, and
 * preparing the same SQL each time would cost more than running it.
 */
const cache = new WeakMap<Db, Map<string, Statement>>();

export function prepared(db: Db, sql: string): Statement {
  let statements = cache.get(db);
  if (!statements) {
    statements = new Map();
    cache.set(db, statements);
  }
  let statement = statements.get(sql);
  if (!statement) {
    statement = db.prepare(sql);
    statements.set(sql, statement);
  }
  return statement;
}
