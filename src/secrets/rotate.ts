// `gatehouse rotate-keys`: every ciphertext in rules/<org>/connections/*.yaml re-encrypted
// to the current master key, each under its own binding (the org's name, the connection,
// the field). Only the ciphertext's characters change in each file: comments, order, quoting
// and layout stay as written (the yaml Document API gives each value's exact range). All or
// nothing: if any ciphertext does not decrypt, no file is written and every failure is listed.
import { existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { isMap, isScalar, parse as parseYaml, parseDocument, Scalar } from 'yaml';
import { isCiphertext, openSecret, parseCiphertext, sealSecret, SecretError } from './envelope.ts';
import type { KeyProvider } from './keys.ts';

export interface RotationEntry {
  /** The file, relative to the rules directory. */
  file: string;
  field: string;
  /** The key id the ciphertext was made with. */
  from: string;
}

export interface RotationReport {
  /** The key every ciphertext is on afterwards. */
  current: string;
  /** Re-encrypted from an older key to the current one. */
  rotated: RotationEntry[];
  /** Already on the current key: left as they were. */
  unchanged: RotationEntry[];
  /** Ciphertexts that did not decrypt (or files that could not be read): nothing was written. */
  failures: (Omit<RotationEntry, 'from'> & { reason: string })[];
  /** Files rewritten. */
  written: string[];
}

interface Splice {
  start: number;
  end: number;
  text: string;
}

function connectionFiles(dir: string): { org: string | undefined; orgFile: string; files: string[] }[] {
  const out = [];
  for (const entry of readdirSync(dir).sort()) {
    const orgDir = join(dir, entry);
    const orgFile = join(orgDir, 'org.yaml');
    if (!statSync(orgDir).isDirectory() || !existsSync(orgFile)) continue;
    let org: string | undefined;
    try {
      const doc = parseYaml(readFileSync(orgFile, 'utf8')) as { name?: unknown } | null;
      if (typeof doc?.name === 'string') org = doc.name;
    } catch {
      org = undefined;
    }
    const connDir = join(orgDir, 'connections');
    const files = existsSync(connDir)
      ? readdirSync(connDir)
          .filter((f) => /\.ya?ml$/.test(f))
          .sort()
          .map((f) => join(connDir, f))
      : [];
    out.push({ org, orgFile, files });
  }
  return out;
}

/** Rotates every ciphertext of the rules directory to keys.currentId; `write: false` only reports. */
export function rotateRules(dir: string, keys: KeyProvider, opts: { write: boolean } = { write: true }): RotationReport {
  const report: RotationReport = { current: keys.currentId, rotated: [], unchanged: [], failures: [], written: [] };
  const rewrites: { path: string; text: string }[] = [];
  for (const { org, orgFile, files } of connectionFiles(dir)) {
    for (const path of files) {
      const file = relative(dir, path);
      const text = readFileSync(path, 'utf8');
      const doc = parseDocument(text);
      if (doc.errors.length > 0 || !isMap(doc.contents)) {
        if (text.includes('gh1:')) report.failures.push({ file, field: '', reason: 'not a valid YAML mapping' });
        continue;
      }
      const splices: Splice[] = [];
      for (const pair of doc.contents.items) {
        const value = pair.value;
        if (!isScalar(pair.key) || !isScalar(value) || typeof value.value !== 'string' || !isCiphertext(value.value)) continue;
        const field = String(pair.key.value);
        if (!org) {
          report.failures.push({ file, field, reason: `${relative(dir, orgFile)} has no valid name: the org a ciphertext is bound to` });
          continue;
        }
        const binding = { org, connection: basename(path).replace(/\.ya?ml$/, ''), field };
        const from = parseCiphertext(value.value).keyId;
        let plaintext: string;
        try {
          plaintext = openSecret({ ciphertext: value.value, binding }, keys);
        } catch (e) {
          if (!(e instanceof SecretError)) throw e;
          report.failures.push({ file, field, reason: e.message });
          continue;
        }
        if (from === keys.currentId) {
          report.unchanged.push({ file, field, from });
          continue;
        }
        const sealed = sealSecret(plaintext, binding, keys);
        const [start, end] = value.range!;
        const quote = value.type === Scalar.QUOTE_DOUBLE ? '"' : value.type === Scalar.QUOTE_SINGLE ? "'" : '';
        splices.push({ start, end, text: `${quote}${sealed}${quote}` });
        report.rotated.push({ file, field, from });
      }
      if (splices.length === 0) continue;
      let out = text;
      for (const s of splices.sort((a, b) => b.start - a.start)) out = out.slice(0, s.start) + s.text + out.slice(s.end);
      rewrites.push({ path, text: out });
    }
  }
  if (report.failures.length > 0 || !opts.write) return report;
  for (const { path, text } of rewrites) {
    // Written beside the file and renamed over it: a crash leaves the old file or the new one, never half of one.
    const tmp = `${path}.rotate-${process.pid}`;
    writeFileSync(tmp, text, { mode: statSync(path).mode & 0o777 });
    renameSync(tmp, path);
    report.written.push(relative(dir, path));
  }
  return report;
}
