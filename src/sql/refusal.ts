// A refusal raised deep in the walkers, carrying the rule id that decided it.
import { GatehouseError, type SqlState } from '../errors.ts';

export class Refusal extends Error {
  readonly rule: string;
  readonly error: GatehouseError;
  constructor(rule: string, sqlstate: SqlState, message: string, opts: { hint?: string; detail?: string; position?: number } = {}) {
    super(message);
    this.rule = rule;
    this.error = new GatehouseError(sqlstate, message, opts);
  }
}

export function refuse(rule: string, sqlstate: SqlState, message: string, opts: { hint?: string; detail?: string; position?: number } = {}): never {
  throw new Refusal(rule, sqlstate, message, opts);
}
