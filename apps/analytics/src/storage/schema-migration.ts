import type { DuckDBConnection } from '@duckdb/node-api';
import type { Logger } from 'pino';
import {
  columnDefinition,
  createTableSql,
  EVENTS_TABLE,
  quoted,
  REQUESTS_TABLE,
  type TableSpec,
} from './schema.js';

/**
 * Creates the tables, or brings a file written by an earlier version to the current schema.
 * Migrations are additive: a column added to a table spec is added to the file, its existing
 * rows filled with the column's default or backfill (what they meant before the column
 * existed), then made NOT NULL when the spec says so. Nothing is ever dropped or renamed. A
 * derived table (`requests`) whose new column has no backfill (its own rows cannot say what it
 * holds) is refilled from its source instead (TableSpec.refill), in the same transaction;
 * `events` is migrated first, so the refill reads it in the current schema.
 *
 * Adding and filling happen in one transaction; DuckDB then needs a committed table to add the
 * NOT NULL constraint (it refuses while the fill is outstanding), and adds no column with a
 * constraint at all. A crash in between leaves filled but nullable columns, which the next open
 * finds nullable and finishes (filling again only what is still null).
 */
export async function migrateSchema(writer: DuckDBConnection, logger: Logger): Promise<void> {
  for (const table of [EVENTS_TABLE, REQUESTS_TABLE]) {
    await writer.run(createTableSql(table));
    await migrateTable(writer, table, logger);
  }
}

async function migrateTable(
  writer: DuckDBConnection,
  table: TableSpec,
  logger: Logger,
): Promise<void> {
  const existing = new Map(
    (
      await writer.runAndReadAll(
        `SELECT column_name, is_nullable FROM duckdb_columns()
         WHERE table_name = $1 AND schema_name = 'main' AND database_name = current_database()`,
        [table.name],
      )
    )
      .getRowObjectsJS()
      .map((row) => [row.column_name as string, row.is_nullable as boolean]),
  );
  const missing = table.columns.filter((c) => !existing.has(c.name));
  const toConstrain = table.columns.filter((c) => c.notNull && existing.get(c.name) !== false);
  if (missing.length === 0 && toConstrain.length === 0) return;
  const refill =
    table.refill !== undefined &&
    [...missing, ...toConstrain].some((c) => c.backfill === undefined);
  const started = performance.now();
  await writer.run('BEGIN TRANSACTION');
  try {
    for (const column of missing) {
      await writer.run(
        `ALTER TABLE ${table.name} ADD COLUMN ${quoted(column.name)} ${columnDefinition(column)}`,
      );
    }
    if (refill) {
      for (const statement of table.refill ?? []) await writer.run(statement);
    } else {
      for (const column of toConstrain) {
        if (column.backfill === undefined) continue;
        await writer.run(
          `UPDATE ${table.name} SET ${quoted(column.name)} = ${column.backfill} WHERE ${quoted(column.name)} IS NULL`,
        );
      }
    }
    await writer.run('COMMIT');
  } catch (error) {
    await writer.run('ROLLBACK').catch(() => undefined);
    throw error;
  }
  for (const column of toConstrain) {
    await writer.run(`ALTER TABLE ${table.name} ALTER COLUMN ${quoted(column.name)} SET NOT NULL`);
  }
  logger.info(
    {
      table: table.name,
      added: missing.map((c) => c.name),
      refilled: refill,
      ms: Math.round(performance.now() - started),
    },
    'migrated table to the current schema',
  );
}
