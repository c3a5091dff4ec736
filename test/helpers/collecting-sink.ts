// A ResultSink for tests: records every message it is given, and can play a slow
// client (reports backpressure after `highWaterMessages` and drains after `drainDelayMs`).
import type { GatehouseError } from '../../src/errors.ts';
import type { FieldDescription, ResultSink } from '../../src/wire/sink.ts';
import { commandTag, dataRowValues, errorFields, messages, rowDescriptionNames } from '../../src/warehouses/pg-framing.ts';

export type Recorded =
  | { type: 'T'; names: string[]; raw?: Buffer; fields?: FieldDescription[] }
  | { type: 'D'; values: (string | null)[]; raw?: Buffer }
  | { type: 'C'; tag: string }
  | { type: 'I' }
  | { type: 'E'; fields: Record<string, string>; error?: GatehouseError }
  | { type: 'N'; fields: Record<string, string> }
  | { type: 'H'; columns: number }
  | { type: 'd'; data: Buffer }
  | { type: 'c' }
  | { type: string; raw: Buffer };

export interface CollectingSinkOptions {
  /** Report backpressure once this many messages arrived since the last drain (default: never). */
  highWaterMessages?: number;
  drainDelayMs?: number;
  /** Keep only counts, not the messages (for large results). */
  countOnly?: boolean;
}

export class CollectingSink implements ResultSink {
  readonly messages: Recorded[] = [];
  /** Every relayed byte, in order (what a client would have received from relay calls). */
  readonly relayed: Buffer[] = [];
  closed = false;
  relayCalls = 0;
  dataRows = 0;
  drains = 0;
  /** Messages received since the last drain, and the most ever seen between drains. */
  sinceDrain = 0;
  maxSinceDrain = 0;
  private readonly opts: CollectingSinkOptions;

  constructor(opts: CollectingSinkOptions = {}) {
    this.opts = opts;
  }

  private add(m: Recorded, n = 1): boolean {
    if (m.type === 'D') this.dataRows++;
    if (!this.opts.countOnly) this.messages.push(m);
    return this.count(n);
  }

  private count(n: number): boolean {
    this.sinceDrain += n;
    if (this.sinceDrain > this.maxSinceDrain) this.maxSinceDrain = this.sinceDrain;
    const hw = this.opts.highWaterMessages;
    return hw === undefined || this.sinceDrain < hw;
  }

  relay(buf: Buffer): boolean {
    this.relayCalls++;
    if (!this.opts.countOnly) this.relayed.push(Buffer.from(buf));
    let n = 0;
    for (const { type, body, frame } of messages(buf)) {
      n++;
      const t = String.fromCharCode(type);
      if (t === 'D') this.dataRows++;
      if (this.opts.countOnly) continue;
      switch (t) {
        case 'T':
          this.messages.push({ type: 'T', names: rowDescriptionNames(body), raw: Buffer.from(frame) });
          break;
        case 'D':
          this.messages.push({ type: 'D', values: dataRowValues(body), raw: Buffer.from(frame) });
          break;
        case 'C':
          this.messages.push({ type: 'C', tag: commandTag(body) });
          break;
        case 'I':
          this.messages.push({ type: 'I' });
          break;
        case 'E':
          this.messages.push({ type: 'E', fields: errorFields(body) });
          break;
        case 'N':
          this.messages.push({ type: 'N', fields: errorFields(body) });
          break;
        case 'd':
          this.messages.push({ type: 'd', data: Buffer.from(body) });
          break;
        case 'c':
          this.messages.push({ type: 'c' });
          break;
        case 'H':
          this.messages.push({ type: 'H', columns: body.readInt16BE(1) });
          break;
        default:
          this.messages.push({ type: t, raw: Buffer.from(frame) });
      }
    }
    return this.count(n);
  }
  rowDescription(fields: FieldDescription[]): boolean {
    return this.add({ type: 'T', names: fields.map((f) => f.name), fields });
  }
  dataRow(values: (string | null)[]): boolean {
    return this.add({ type: 'D', values });
  }
  commandComplete(tag: string): boolean {
    return this.add({ type: 'C', tag });
  }
  emptyQuery(): boolean {
    return this.add({ type: 'I' });
  }
  copyOutResponse(columns: number): boolean {
    return this.add({ type: 'H', columns });
  }
  copyData(data: Buffer): boolean {
    return this.add({ type: 'd', data: Buffer.from(data) });
  }
  copyDone(): boolean {
    return this.add({ type: 'c' });
  }
  notice(message: string, detail?: string): boolean {
    return this.add({ type: 'N', fields: { M: message, ...(detail ? { D: detail } : {}) } });
  }
  error(err: GatehouseError): boolean {
    return this.add({ type: 'E', fields: { C: err.sqlstate, M: err.message }, error: err });
  }
  drain(): Promise<void> {
    this.drains++;
    return new Promise((resolve) =>
      setTimeout(() => {
        this.sinceDrain = 0;
        resolve();
      }, this.opts.drainDelayMs ?? 0),
    );
  }

  // ---- helpers for assertions ----
  of<T extends Recorded['type']>(type: T): Extract<Recorded, { type: T }>[] {
    return this.messages.filter((m) => m.type === type) as Extract<Recorded, { type: T }>[];
  }
  rows(): (string | null)[][] {
    return this.of('D').map((m) => (m as { values: (string | null)[] }).values);
  }
  tags(): string[] {
    return this.of('C').map((m) => (m as { tag: string }).tag);
  }
  errors(): Record<string, string>[] {
    return this.of('E').map((m) => (m as { fields: Record<string, string> }).fields);
  }
  /** Concatenated CopyData payloads. */
  copyText(): string {
    return Buffer.concat(this.of('d').map((m) => (m as { data: Buffer }).data)).toString('utf8');
  }
  /** Message types in order, e.g. "T D D C". */
  types(): string {
    return this.messages.map((m) => m.type).join(' ');
  }
  clear(): void {
    this.messages.length = 0;
    this.relayed.length = 0;
    this.dataRows = 0;
  }
}
