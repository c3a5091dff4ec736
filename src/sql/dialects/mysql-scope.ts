// Name resolution for the MySQL emitter: which relation a column comes from and its type.
// The emitter needs both: a warehouse table's text column gets PostgreSQL's collation, and
// `/`, `+`, `||` and literals are written by the types around them (never guessed).
import type { SqlType } from './types.ts';

/** A column's type, or undefined when Gatehouse does not know it. */
export type ColumnTypes = Map<string, SqlType | undefined>;

export interface RangeItem {
  /** The name the query refers to it by (alias, or the relation's own name). */
  name: string;
  /** Its columns in order, or undefined when the set of columns is not known. */
  columns?: ColumnTypes;
  /** A warehouse table (only inside a topic's barrier): its text columns are collated when read. */
  base: boolean;
}

export interface Resolved {
  type: SqlType | undefined;
  /** The column is a warehouse table's column (read inside a barrier). */
  base: boolean;
  /** How many query levels out the column was found (0: this SELECT). */
  depth: number;
}

export class Scope {
  readonly items: RangeItem[] = [];
  readonly ctes = new Map<string, ColumnTypes | undefined>();
  constructor(readonly parent?: Scope) {}

  /** A CTE visible here by that name (WITH of this level or an outer one), or null. */
  cte(name: string): { columns: ColumnTypes | undefined } | null {
    for (let s: Scope | undefined = this; s; s = s.parent) {
      if (s.ctes.has(name)) return { columns: s.ctes.get(name) };
    }
    return null;
  }

  /**
   * The column a ColumnRef names, as PostgreSQL resolves it: the nearest level that has it.
   * `unknown` when a level has a relation whose columns are not known (it might be there).
   */
  resolve(fields: string[]): Resolved | 'unknown' | 'missing' {
    let depth = 0;
    for (let s: Scope | undefined = this; s; s = s.parent, depth++) {
      if (fields.length === 2) {
        const item = s.items.find((i) => i.name === fields[0]);
        if (!item) continue;
        if (!item.columns) return 'unknown';
        if (!item.columns.has(fields[1]!)) return 'missing';
        return { type: item.columns.get(fields[1]!), base: item.base, depth };
      }
      const col = fields[0]!;
      const found = s.items.filter((i) => i.columns?.has(col));
      if (s.items.some((i) => !i.columns)) return 'unknown';
      if (found.length === 0) continue;
      // A USING column appears on both sides with one type; otherwise PostgreSQL calls it ambiguous.
      const types = new Set(found.map((i) => i.columns!.get(col)));
      const type = types.size === 1 ? [...types][0] : undefined;
      return { type, base: found.some((i) => i.base), depth };
    }
    return 'missing';
  }
}
