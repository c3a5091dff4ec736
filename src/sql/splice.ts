// Raw SQL of queriers is forwarded as written; only its topic references (names in the
// topics schema) are replaced, in the text itself, by their barrier subqueries. The
// rest of the statement is never deparsed (DESIGN 3: a deparse must not change what a
// name resolves to).
import type { AstNode } from './parse.ts';
import { refuse } from './refusal.ts';
import { deparseOneLine, quoteIdent } from './deparse.ts';
import type { RawTopicSplice } from './scope.ts';

const isIdentByte = (b: number): boolean =>
  (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f || b === 0x24 || b >= 0x80;

/** Skip whitespace and comments (nested block comments, as PostgreSQL's scanner does). */
function skipSpace(buf: Buffer, i: number): number {
  for (;;) {
    const b = buf[i];
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0c) i++;
    else if (b === 0x2d && buf[i + 1] === 0x2d) {
      while (i < buf.length && buf[i] !== 0x0a) i++;
    } else if (b === 0x2f && buf[i + 1] === 0x2a) {
      let depth = 1;
      i += 2;
      while (i < buf.length && depth > 0) {
        if (buf[i] === 0x2f && buf[i + 1] === 0x2a) {
          depth++;
          i += 2;
        } else if (buf[i] === 0x2a && buf[i + 1] === 0x2f) {
          depth--;
          i += 2;
        } else i++;
      }
    } else return i;
  }
}

/** End (exclusive) of one identifier starting at i, or -1. */
function identEnd(buf: Buffer, i: number): number {
  let j = i;
  if ((buf[j] === 0x55 || buf[j] === 0x75) && buf[j + 1] === 0x26 && buf[j + 2] === 0x22) j += 2; // U&"..."
  if (buf[j] === 0x22) {
    j++;
    for (;;) {
      if (j >= buf.length) return -1;
      if (buf[j] === 0x22) {
        if (buf[j + 1] === 0x22) {
          j += 2;
          continue;
        }
        j++;
        break;
      }
      j++;
    }
    if (j - i > 0 && buf[i] !== 0x22) {
      // U&"..." UESCAPE 'c'
      const k = skipSpace(buf, j);
      if (
        buf
          .subarray(k, k + 7)
          .toString('latin1')
          .toUpperCase() === 'UESCAPE'
      )
        return -1;
    }
    return j;
  }
  if (!isIdentByte(buf[j]) || (buf[j] >= 0x30 && buf[j] <= 0x39)) return -1;
  while (j < buf.length && isIdentByte(buf[j])) j++;
  return j;
}

/** End (exclusive) of a qualified name of `parts` identifiers starting at `start`. */
export function qualifiedNameEnd(buf: Buffer, start: number, parts: number): number {
  let i = start;
  for (let p = 0; p < parts; p++) {
    if (p > 0) {
      i = skipSpace(buf, i);
      if (buf[i] !== 0x2e) return -1;
      i = skipSpace(buf, i + 1);
    }
    const e = identEnd(buf, i);
    if (e < 0) return -1;
    i = e;
  }
  return i;
}

/** The statement's text with every topic reference replaced by its barrier subquery. */
export function applySplices(bytes: Buffer, stmtStart: number, stmtEnd: number, splices: RawTopicSplice[]): string {
  const sorted = [...splices].sort((a, b) => b.location - a.location);
  let text = bytes.subarray(stmtStart, stmtEnd);
  for (const s of sorted) {
    const end = qualifiedNameEnd(bytes, s.location, s.parts);
    if (end < 0 || s.location < stmtStart || end > stmtEnd) {
      refuse('unsupported', '0A000', 'this spelling of a topic name is not supported; write it as schema.topic');
    }
    const inner: AstNode = { SelectStmt: s.inner };
    const replacement = `(${deparseOneLine(inner)})${s.hasAlias ? '' : ` AS ${quoteIdent(s.aliasName)}`}`;
    text = Buffer.concat([text.subarray(0, s.location - stmtStart), Buffer.from(replacement, 'utf8'), text.subarray(end - stmtStart)]);
  }
  return text.toString('utf8').trim();
}
