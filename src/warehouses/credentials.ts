// A warehouse account's password, as the connector gets it: a function called once per
// upstream sign-in, whose result is used for that sign-in and dropped (never kept on a
// connection, a pool or a warehouse). A stored password is decrypted here, in the connector,
// and nowhere else (DESIGN 3, "Stored credentials").
import type { Connection } from '../config/model.ts';
import { GatehouseError } from '../errors.ts';
import { type SealedSecret, SecretError, openSecret } from '../secrets/envelope.ts';
import type { KeyResolution } from '../secrets/resolve.ts';

/** Gives the password for one sign-in; throws GatehouseError 08001 when a stored one cannot be decrypted. */
export type PasswordSource = () => string | undefined;

/** Where one account's password comes from: a sealed ciphertext, or an environment variable. */
export interface PasswordSetting {
  sealed?: SealedSecret;
  env?: string;
}

/**
 * The refusal of a connection whose stored credentials do not open. The message names the
 * org, the connection and the field; the detail the reason (wrong key, unknown key id,
 * altered). Never the secret, never the ciphertext.
 */
export function credentialError(conn: Pick<Connection, 'name' | 'org'>, field: string, reason: string): GatehouseError {
  return new GatehouseError('08001', `connection "${conn.name}" of org ${conn.org} is refused: its stored ${field} cannot be decrypted`, {
    detail: reason,
    hint: 'the master keys Gatehouse is given must include the one the ciphertext was made with; re-encrypt the secret with gatehouse encrypt if it was altered (docs/security.md, "Stored credentials")',
  });
}

export function passwordSource(conn: Pick<Connection, 'name' | 'org'>, setting: PasswordSetting, keys: KeyResolution | undefined): PasswordSource | undefined {
  const { sealed, env } = setting;
  if (sealed) {
    return () => {
      const field = sealed.binding.field;
      if (!keys || 'none' in keys) throw credentialError(conn, field, keys?.none ?? 'no master key is configured');
      if ('problem' in keys) throw credentialError(conn, field, `the master keys could not be loaded: ${keys.problem}`);
      try {
        return openSecret(sealed, keys.provider);
      } catch (e) {
        if (e instanceof SecretError) throw credentialError(conn, field, e.message);
        throw e;
      }
    };
  }
  // Read at each sign-in: an operator who changes the variable's source need not restart.
  if (env) return () => process.env[env];
  return undefined;
}

/** Whether a password source opens: called once (at start) and the password dropped at once. */
export function credentialProblem(source: PasswordSource | undefined): GatehouseError | undefined {
  try {
    source?.();
    return undefined;
  } catch (e) {
    if (e instanceof GatehouseError) return e;
    throw e;
  }
}
