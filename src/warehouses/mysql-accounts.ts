// Least privilege for mysql warehouse accounts (DESIGN 3, "Security by construction"): what
// SHOW GRANTS says an account may do, and what Gatehouse refuses at load. Allowlists: the
// querier account may hold USAGE, SELECT and SHOW VIEW on databases and tables (and INSERT,
// UPDATE, DELETE where the connection allows writes); the topics account SELECT on the topics'
// base tables' fields (column grants) and nothing else. Anything else is named in the refusal.
// Pure: parsing and judging, no I/O (mysql.ts runs SHOW GRANTS).
import type { Topic } from '../config/model.ts';

/** One GRANT line of SHOW GRANTS. */
export interface Grant {
  /** Privileges upper-cased; `columns` when the grant names columns (SELECT (`a`, `b`)). */
  privileges: { name: string; columns?: string[] }[];
  /** `*.*`, a database's `db.*`, a table's `db.t`; routine or proxy grants keep their text. */
  on: { kind: 'global' } | { kind: 'database'; db: string } | { kind: 'table'; db: string; table: string } | { kind: 'other'; text: string };
  grantOption: boolean;
  /** `GRANT role TO user`: a role membership (its privileges are not in this account's SHOW GRANTS). */
  role?: string;
  text: string;
}

export interface GrantProblem {
  phrase: string;
}

/** Splits at `sep` outside backticks, quotes and parentheses. */
function splitTop(s: string, sep: RegExp): string[] {
  const out: string[] = [];
  let depth = 0;
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) {
        if (s[i + 1] === quote) i++;
        else quote = undefined;
      }
      continue;
    }
    if (c === '`' || c === "'" || c === '"') quote = c;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (depth === 0) {
      sep.lastIndex = i;
      const m = sep.exec(s);
      if (m && m.index === i) {
        out.push(s.slice(start, i));
        start = i + m[0].length;
        i = start - 1;
      }
    }
  }
  out.push(s.slice(start));
  return out;
}

/** An identifier as SHOW GRANTS writes it (`x`, 'x' or bare), unquoted. */
function unquote(s: string): string {
  const t = s.trim();
  const q = t[0];
  if ((q === '`' || q === "'" || q === '"') && t.endsWith(q))
    return t
      .slice(1, -1)
      .split(q + q)
      .join(q);
  return t;
}

export function parseGrant(line: string): Grant {
  const text = line.trim();
  const body = text.replace(/^GRANT\s+/i, '');
  const [privText, rest] = splitOnce(body, /\s+ON\s+/iy);
  if (rest === undefined) {
    // GRANT `role` TO `user`@`host`
    const [role] = splitOnce(body, /\s+TO\s+/iy);
    return { privileges: [], on: { kind: 'other', text: '' }, grantOption: /\bWITH\s+ADMIN\s+OPTION\b/i.test(text), role: unquote(role), text };
  }
  const [objText, tail = ''] = splitOnce(rest, /\s+TO\s+/iy);
  const privileges = splitTop(privText, /\s*,\s*/y).map((p) => {
    const m = /^([^(]*?)\s*\((.*)\)\s*$/s.exec(p.trim());
    if (!m) return { name: p.trim().toUpperCase().replace(/\s+/g, ' ') };
    return { name: m[1].trim().toUpperCase().replace(/\s+/g, ' '), columns: splitTop(m[2], /\s*,\s*/y).map(unquote) };
  });
  return { privileges, on: parseObject(objText.trim()), grantOption: /\bWITH\b.*\bGRANT\s+OPTION\b/i.test(tail), text };
}

function splitOnce(s: string, sep: RegExp): [string, string | undefined] {
  const parts = splitTop(s, sep);
  if (parts.length === 1) return [s, undefined];
  // Only the first separator splits; later ones stay in the rest (re-joined from the original text).
  const first = parts[0];
  sep.lastIndex = first.length;
  const m = sep.exec(s);
  return [first, s.slice(first.length + (m ? m[0].length : 0))];
}

function parseObject(text: string): Grant['on'] {
  if (text === '*.*' || text === '*') return { kind: 'global' };
  if (/^(FUNCTION|PROCEDURE|PACKAGE|PACKAGE BODY)\s/i.test(text)) return { kind: 'other', text };
  const parts = splitTop(text, /\./y);
  if (parts.length === 2) {
    const db = unquote(parts[0]);
    return parts[1].trim() === '*' ? { kind: 'database', db } : { kind: 'table', db, table: unquote(parts[1]) };
  }
  return { kind: 'other', text };
}

export function parseGrants(lines: string[]): Grant[] {
  return lines.filter((l) => /^\s*GRANT\s/i.test(l)).map(parseGrant);
}

function where(g: Grant): string {
  switch (g.on.kind) {
    case 'global':
      return '*.*';
    case 'database':
      return `${g.on.db}.*`;
    case 'table':
      return `${g.on.db}.${g.on.table}`;
    default:
      return g.on.text;
  }
}

/** Databases that hold the server's own secrets (mysql.user's password hashes) and state. */
const SYSTEM_DATABASES = new Set(['mysql', 'sys', 'performance_schema']);

/** Problems of the querier account: anything beyond reading tables (and writing them where the connection allows writes). */
export function grantProblems(grants: Grant[], opts: { allowWrites: boolean }): GrantProblem[] {
  const allowed = new Set(['USAGE', 'SELECT', 'SHOW VIEW', ...(opts.allowWrites ? ['INSERT', 'UPDATE', 'DELETE'] : [])]);
  const out: GrantProblem[] = [];
  for (const g of grants) {
    if (g.role !== undefined) {
      out.push({ phrase: `is granted role ${g.role} (Gatehouse cannot see a role's privileges: grant the account its privileges directly)` });
      continue;
    }
    if (g.grantOption) out.push({ phrase: `holds GRANT OPTION on ${where(g)}` });
    for (const p of g.privileges) {
      if (p.name === 'USAGE') continue;
      if (!allowed.has(p.name)) {
        const why = p.name === 'ALL PRIVILEGES' || p.name === 'ALL' ? '' : WRITES.has(p.name) ? ' (a write: the connection does not set allow_writes)' : '';
        out.push({ phrase: `holds ${p.name} on ${where(g)}${why}` });
      } else if (g.on.kind === 'global') {
        out.push({ phrase: `holds ${p.name} on *.* (every database, the mysql database's password hashes included): grant it on the served database` });
      } else if (g.on.kind !== 'other' && SYSTEM_DATABASES.has(g.on.db.toLowerCase())) {
        out.push({ phrase: `holds ${p.name} on ${where(g)} (a system database)` });
      } else if (g.on.kind === 'other') {
        out.push({ phrase: `holds ${p.name} on ${where(g)}` });
      }
    }
  }
  return out;
}

const WRITES = new Set([
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'ALTER',
  'INDEX',
  'REFERENCES',
  'CREATE VIEW',
  'CREATE ROUTINE',
  'ALTER ROUTINE',
  'CREATE TEMPORARY TABLES',
  'TRIGGER',
  'EVENT',
  'LOCK TABLES',
  'DELETE HISTORY',
]);

/**
 * Problems of the topics account: it may hold SELECT on the topics' base tables, on their
 * fields and the fields their access filters read (column grants), and nothing else; and it
 * must be able to read every such field.
 */
export function topicsGrantProblems(grants: Grant[], topics: Topic[], database: string): GrantProblem[] {
  const dbOf = (schema: string) => (schema === 'public' ? database : schema);
  const needed = new Map<string, Set<string>>();
  for (const t of topics) {
    const k = `${dbOf(t.base.schema)}.${t.base.table}`;
    const cols = needed.get(k) ?? new Set<string>();
    for (const f of [...t.fields, ...t.access_filters.map((a) => a.field)]) cols.add(f);
    needed.set(k, cols);
  }
  const out: GrantProblem[] = [];
  const granted = new Map<string, Set<string>>();
  for (const g of grants) {
    if (g.role !== undefined) {
      out.push({ phrase: `is granted role ${g.role}` });
      continue;
    }
    if (g.grantOption) out.push({ phrase: `holds GRANT OPTION on ${where(g)}` });
    for (const p of g.privileges) {
      if (p.name === 'USAGE') continue;
      if (p.name !== 'SELECT' || g.on.kind !== 'table') {
        out.push({ phrase: `holds ${p.name} on ${where(g)}` });
        continue;
      }
      const k = `${g.on.db}.${g.on.table}`;
      const want = needed.get(k);
      if (!want) {
        out.push({ phrase: `can read ${k}, which no topic of the connection is based on` });
        continue;
      }
      if (!p.columns) {
        out.push({ phrase: `holds SELECT on all of ${k}: grant only the topics' fields (GRANT SELECT (<fields>) ON ${k})` });
        for (const c of want) (granted.get(k) ?? granted.set(k, new Set()).get(k)!).add(c);
        continue;
      }
      const extra = p.columns.filter((c) => ![...want].some((w) => w.toLowerCase() === c.toLowerCase()));
      if (extra.length) out.push({ phrase: `can read ${k} column(s) ${extra.join(', ')}, which are not the topics' fields` });
      const set = granted.get(k) ?? granted.set(k, new Set()).get(k)!;
      for (const c of p.columns) set.add(c.toLowerCase());
    }
  }
  for (const [k, cols] of needed) {
    const have = granted.get(k) ?? new Set();
    const missing = [...cols].filter((c) => !have.has(c.toLowerCase()) && !have.has(c));
    if (missing.length) out.push({ phrase: `cannot read ${k} field(s) ${missing.join(', ')} that its topics expose` });
  }
  return out;
}
