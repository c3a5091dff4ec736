// The secret fields of a connection file, one schema piece for every connection kind
// (postgres here; mysql and snowflake spread the same pieces): a stored secret is a
// ciphertext (src/secrets), never the secret itself. A value that is not one is refused at
// load, and the message never repeats the value (it may be a password pasted in).
import { z } from 'zod';
import { CIPHERTEXT } from '../secrets/envelope.ts';

/** A ciphertext as the YAML holds it, before the loader binds it to its org, connection and field. */
export interface UnboundCiphertext {
  ciphertext: string;
}

/** One secret field: `password: gh1:<key id>:<base64url>`, as `gatehouse encrypt` prints it. */
export const ciphertextField = (field: string) =>
  z
    .string({ error: `must be a ciphertext made by gatehouse encrypt` })
    .regex(
      CIPHERTEXT,
      `must be a ciphertext (gh1:<key id>:...), never the secret itself: run \`gatehouse encrypt --org ORG --connection NAME --field ${field}\` with the secret on stdin and paste its output here`,
    )
    .transform((ciphertext): UnboundCiphertext => ({ ciphertext }));

/** The querier account's password: encrypted (password) or from an environment variable (password_env). */
export const passwordFields = {
  password: ciphertextField('password').optional(),
  password_env: z.string().min(1).optional(),
};

/** The topics account's password, the same two ways. */
export const topicsPasswordFields = {
  topics_password: ciphertextField('topics_password').optional(),
  topics_password_env: z.string().min(1).optional(),
};

/** A Snowflake key-pair sign-in (SNOWFLAKE_JWT): the PEM private key, and its passphrase if the key is encrypted. */
export const privateKeyFields = {
  private_key: ciphertextField('private_key').optional(),
  private_key_env: z.string().min(1).optional(),
  private_key_passphrase: ciphertextField('private_key_passphrase').optional(),
  private_key_passphrase_env: z.string().min(1).optional(),
};

/** The topics account's private key, the same ways. */
export const topicsPrivateKeyFields = {
  topics_private_key: ciphertextField('topics_private_key').optional(),
  topics_private_key_env: z.string().min(1).optional(),
  topics_private_key_passphrase: ciphertextField('topics_private_key_passphrase').optional(),
  topics_private_key_passphrase_env: z.string().min(1).optional(),
};

/** Every secret field of every connection kind (`gatehouse encrypt --field`); a kind with new ones adds them here. */
export const SECRET_FIELDS = [
  'password',
  'topics_password',
  'private_key',
  'private_key_passphrase',
  'topics_private_key',
  'topics_private_key_passphrase',
] as const;

/** The refinement each kind adds: a secret comes from one place, never two. */
export function oneSourcePerSecret(c: Record<string, unknown>, ctx: z.RefinementCtx): void {
  for (const field of SECRET_FIELDS) {
    if (c[field] !== undefined && c[`${field}_env`] !== undefined) {
      ctx.addIssue({ code: 'custom', path: [field], message: `set ${field} or ${field}_env, not both` });
    }
  }
}

export function isUnboundCiphertext(v: unknown): v is UnboundCiphertext {
  return typeof v === 'object' && v !== null && Object.keys(v).length === 1 && typeof (v as UnboundCiphertext).ciphertext === 'string';
}
