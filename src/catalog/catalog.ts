// The catalog a Query Topics user sees (DESIGN 1 and 3, "Catalog"): an embedded
// PostgreSQL (PGlite, in a worker, as the embedded warehouse) holding one EMPTY table
// per topic of the connection, shaped like the topic: its allowed fields, in the
// topic's order, with the types the warehouse reported at start. psql's \d, pgjdbc's
// DatabaseMetaData and SQLAlchemy's inspector then run their own catalog queries on it
// for real, and see the topics and nothing else: the database holds nothing secret.
//
// One per connection, started on first use (PGlite takes seconds and ~200 MB) and
// shared by every session of the connection: the field allowlist is per topic, not
// per user, so every Query Topics user of a connection sees the same catalog.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Connection, Topic } from '../config/model.ts';
import { quoteIdent, quoteLiteral } from '../sql/deparse.ts';
import { EmbeddedWarehouse } from '../warehouses/embedded.ts';
import type { WarehouseSession, WarehouseSessionOptions } from '../warehouses/types.ts';

/** A type name as format_type prints it (`integer`, `numeric(12,2)`, `timestamp with time zone`, `text[]`). */
const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_ ."]*(\(\d+(,\s*\d+)?\))?( with(out)? time zone)?(\[\])*$/;

/**
 * The seed of a connection's catalog: a table per topic. A column whose type the
 * warehouse did not report, or that PGlite does not know (an enum, a domain, an
 * extension's type), stays `text` rather than failing the whole catalog.
 */
export function catalogSeed(topics: Iterable<Topic>): string {
  const out: string[] = [];
  for (const t of topics) {
    const table = `public.${quoteIdent(t.name)}`;
    out.push(`CREATE TABLE ${table} (${t.fields.map((f) => `${quoteIdent(f)} text`).join(', ')});`);
    for (const f of t.fields) {
      const type = t.columnTypes?.[f];
      if (!type || type === 'text' || !TYPE_NAME.test(type)) continue;
      out.push(
        `DO $catalog$ BEGIN ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(f)} TYPE ${type} USING NULL; EXCEPTION WHEN others THEN NULL; END $catalog$;`,
      );
    }
    out.push(`COMMENT ON TABLE ${table} IS ${quoteLiteral(`topic ${t.name}`)};`);
  }
  return out.join('\n');
}

export class TopicCatalog {
  private starting?: Promise<EmbeddedWarehouse>;
  private warehouse?: EmbeddedWarehouse;

  constructor(
    private readonly connection: Connection,
    private readonly topics: Map<string, Topic>,
    private readonly logger?: Logger,
  ) {}

  /** Milliseconds the catalog took to start (0 until it has). */
  get startupMs(): number {
    return this.warehouse?.startupMs ?? 0;
  }

  async openSession(opts: WarehouseSessionOptions): Promise<WarehouseSession> {
    const wh = await this.start();
    return wh.openSession({ ...opts, readOnly: true });
  }

  /** Starts once for all the sessions that ask at the same time; a failed start is retried by the next. */
  private start(): Promise<EmbeddedWarehouse> {
    this.starting ??= this.boot().catch((e) => {
      this.starting = undefined;
      throw e;
    });
    return this.starting;
  }

  private async boot(): Promise<EmbeddedWarehouse> {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-catalog-'));
    try {
      writeFileSync(join(dir, 'catalog.sql'), catalogSeed(this.topics.values()));
      const conn: Connection = { ...this.connection, target: { kind: 'embedded', seed: ['catalog.sql'] }, allow_writes: false };
      const wh = new EmbeddedWarehouse(conn, dir, this.logger);
      await wh.start();
      this.warehouse = wh;
      this.logger?.info({ org: conn.org, connection: conn.name, ms: Math.round(wh.startupMs), topics: this.topics.size }, 'topic catalog started');
      return wh;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {
    const starting = this.starting;
    this.starting = undefined;
    const wh = this.warehouse ?? (await starting?.catch(() => undefined));
    this.warehouse = undefined;
    await wh?.close();
  }
}
