export { openDatabase, migrate, schemaVersion, type Db } from './database.ts';
export { MIGRATIONS, type Migration } from './migrations.ts';
