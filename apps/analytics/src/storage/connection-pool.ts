import type { DuckDBConnection } from '@duckdb/node-api';

/**
 * A fixed set of DuckDB connections for read queries. A DuckDB connection runs one query at a
 * time; several connections on one instance run in parallel, and reads never wait for the
 * ingest writer (MVCC), which has its own connection.
 */
export class ConnectionPool {
  private readonly idle: DuckDBConnection[];
  private readonly waiters: Array<(connection: DuckDBConnection) => void> = [];
  private closed = false;

  constructor(private readonly connections: DuckDBConnection[]) {
    this.idle = [...connections];
  }

  async use<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const connection = await this.acquire();
    try {
      return await work(connection);
    } finally {
      this.release(connection);
    }
  }

  close(): void {
    this.closed = true;
    for (const connection of this.connections) connection.closeSync();
  }

  private acquire(): Promise<DuckDBConnection> {
    if (this.closed) return Promise.reject(new Error('the analytics database is closed'));
    const connection = this.idle.pop();
    if (connection) return Promise.resolve(connection);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(connection: DuckDBConnection): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(connection);
    else this.idle.push(connection);
  }
}
