export { openDatabase, migrate, schemaVersion, statement, type Db } from './database.ts';
export { MIGRATIONS, type Migration } from './migrations.ts';
