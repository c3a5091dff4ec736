// Parsing with PostgreSQL's own parser (libpg-query, WASM). DESIGN 3: the parser of record.
import { loadModule, parseSync } from 'libpg-query';
import { GatehouseError } from '../errors.ts';

/** A node of the libpg-query JSON AST: `{ TypeName: { ...fields } }`. Kept loose on purpose. */
// biome-ignore lint/suspicious/noExplicitAny: the AST's node kinds are read by name, checked where used
export type AstNode = Record<string, any>;

export interface ParsedStatement {
  /** The statement node, e.g. `{ SelectStmt: {...} }`. */
  stmt: AstNode;
  /** The statement's own text, exactly as the client wrote it (no comments before it). */
  text: string;
  /** Byte offset of the statement in the UTF-8 text (libpg-query locations are byte offsets). */
  byteStart: number;
  byteEnd: number;
}

export interface ParsedText {
  /** The whole text as UTF-8 bytes: node locations index into it. */
  bytes: Buffer;
  statements: ParsedStatement[];
}

let loaded: Promise<void> | undefined;

/** The WASM module loads once per process. */
export function ensureParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

/** 1-based character position of a byte offset, as ErrorResponse 'P' wants. */
export function charPosition(bytes: Buffer, byteOffset: number): number {
  const clamped = Math.max(0, Math.min(byteOffset, bytes.length));
  return bytes.subarray(0, clamped).toString('utf8').length + 1;
}

/**
 * Parse a whole simple-Query text. A parse failure is a 42601 refusal carrying the
 * parser's message and the 1-based position PostgreSQL itself would report.
 */
export async function parseSql(sql: string): Promise<ParsedText> {
  await ensureParser();
  return parseSqlSync(sql);
}

export function parseSqlSync(sql: string): ParsedText {
  const bytes = Buffer.from(sql, 'utf8');
  // libpg-query rejects '' ("Query cannot be empty"); PostgreSQL answers EmptyQueryResponse.
  if (sql.trim() === '') return { bytes, statements: [] };
  let tree: { stmts?: Array<{ stmt: AstNode; stmt_location?: number; stmt_len?: number }> };
  try {
    tree = parseSync(sql);
  } catch (e) {
    const err = e as Error & { sqlDetails?: { message: string; cursorPosition: number } };
    const message = err.sqlDetails?.message ?? err.message ?? 'syntax error';
    // libpg-query's cursorPosition is a 0-based character offset; PostgreSQL reports 1-based.
    const pos = err.sqlDetails?.cursorPosition;
    throw new GatehouseError('42601', message, {
      position: typeof pos === 'number' && pos >= 0 ? pos + 1 : undefined,
    });
  }
  const statements: ParsedStatement[] = [];
  for (const raw of tree.stmts ?? []) {
    const byteStart = raw.stmt_location ?? 0;
    // stmt_len 0 (or absent) means "to the end of the text".
    const byteEnd = raw.stmt_len ? byteStart + raw.stmt_len : bytes.length;
    const text = bytes.subarray(byteStart, byteEnd).toString('utf8').trim();
    statements.push({ stmt: raw.stmt, text, byteStart, byteEnd });
  }
  return { bytes, statements };
}

/** The single key of a wrapped node: `{ SelectStmt: {...} }` -> 'SelectStmt'. */
export function nodeType(node: AstNode): string {
  return Object.keys(node)[0] ?? '';
}
