// One side's answer to a statement, in a form two sides can be compared in: every value
// as PostgreSQL's text (no driver parsing), rows as a sorted multiset.
import pg from 'pg';

export type Answer = { ok: true; columns: string[]; rows: string[] } | { ok: false; code: string; message: string };

const rawText = { getTypeParser: () => (v: string) => v };

/** A session that reconnects when the server drops it (a refusal may end a session). */
export class Session {
  private client?: pg.Client;
  constructor(
    private readonly config: pg.ClientConfig,
    private readonly setup: string[],
  ) {}

  private async connect(): Promise<pg.Client> {
    const c = new pg.Client({ ...this.config, types: rawText });
    c.on('error', () => {
      if (this.client === c) this.client = undefined;
    });
    await c.connect();
    for (const s of this.setup) await c.query(s);
    this.client = c;
    return c;
  }

  async run(sql: string): Promise<Answer> {
    let c: pg.Client;
    try {
      c = this.client ?? (await this.connect());
    } catch (e) {
      const err = e as { code?: string; message: string };
      return { ok: false, code: err.code ?? 'connect', message: err.message };
    }
    try {
      const r = await c.query({ text: sql, rowMode: 'array' });
      const last = Array.isArray(r) ? r.at(-1) : r;
      return {
        ok: true,
        // A whole-row value is an anonymous record through Gatehouse (the topic is a derived
        // table) and the table's row type directly: same text, so compare them as one kind.
        columns: (last.fields ?? []).map((f: pg.FieldDef) => `${f.name}:${f.dataTypeID === 2249 || f.dataTypeID >= 16384 ? 'composite' : f.dataTypeID}`),
        rows: (last.rows as unknown[][]).map((row) => JSON.stringify(row)).sort(),
      };
    } catch (e) {
      const err = e as { code?: string; message: string };
      if (!err.code || err.code.startsWith('08') || err.code === '57P01') {
        await c.end().catch(() => {});
        if (this.client === c) this.client = undefined;
      }
      return { ok: false, code: err.code ?? 'client', message: err.message };
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}

export function describeAnswer(a: Answer): string {
  if (!a.ok) return `ERROR ${a.code}: ${a.message}`;
  const head = a.rows.slice(0, 5).join('\n    ');
  return `${a.rows.length} row(s) [${a.columns.join(', ')}]${a.rows.length ? `\n    ${head}${a.rows.length > 5 ? '\n    ...' : ''}` : ''}`;
}

/** Same columns and same rows (as multisets), or both errors. */
export function sameAnswer(x: Answer, y: Answer): boolean {
  if (!x.ok || !y.ok) return !x.ok && !y.ok;
  return JSON.stringify(x.columns) === JSON.stringify(y.columns) && x.rows.length === y.rows.length && x.rows.every((r, i) => r === y.rows[i]);
}
