// gatehouse login's failures: what happened and what the person can do about it. These never
// reach the wire (no SQLSTATE); the CLI prints the message and the hint and exits 1. No token,
// code or verifier is ever part of one.
export class LoginError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'LoginError';
  }
}

/** A fetch that failed before any HTTP answer, as words: "connection refused", "timed out". */
export function networkCause(e: unknown): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError') return 'timed out';
  const code = err?.cause?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  return err?.cause?.message ?? err?.message ?? 'unknown network error';
}
