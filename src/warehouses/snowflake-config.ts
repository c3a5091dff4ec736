// Proposal: the `kind: snowflake` connection file (rules/<org>/connections/<name>.yaml). Not yet in
// config/schema.ts's union: the coordinator adds it there when the row connectors are merged. The
// credentials are the stored-credential ciphertexts of issue 13 (decrypted only in the connector),
// or an environment variable name while that lands; never a clear-text secret in rules/.
import { z } from 'zod';

const snowflakeName = z.string().regex(/^("[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)$/, 'must be a Snowflake identifier (quoted for exact case)');

export const snowflakeConnectionSchema = z
  .object({
    kind: z.literal('snowflake'),
    /** Account identifier: orgname-accountname or a locator (xy12345.eu-west-1). */
    account: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'must be a Snowflake account identifier'),
    user: z.string().min(1),
    role: snowflakeName.optional(),
    warehouse: snowflakeName,
    database: snowflakeName,
    schema: snowflakeName.default('PUBLIC'),
    /** Exactly one of: a password or a key-pair private key (PEM), each as a stored ciphertext or an env variable name. */
    password_env: z.string().optional(),
    password_ciphertext: z.string().optional(),
    private_key_env: z.string().optional(),
    private_key_ciphertext: z.string().optional(),
    private_key_passphrase_env: z.string().optional(),
    /** The account query_topics sessions use (SELECT on the topics' columns only); same credential kinds. */
    topics_user: z.string().min(1).optional(),
    topics_password_env: z.string().optional(),
    topics_private_key_env: z.string().optional(),
    /**
     * Advanced, for tests: the URL every SDK request goes to instead of
     * https://<account>.snowflakecomputing.com. Gatehouse's own suite points it at its local fake
     * Snowflake; an http:// URL means no TLS at all, so it is refused for any host off loopback.
     */
    access_url: z
      .string()
      .url()
      .refine((u) => /^https:\/\//.test(u) || /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/.test(u), 'http:// is allowed only on loopback')
      .optional(),
  })
  .strict()
  .refine(
    (c) => [c.password_env, c.password_ciphertext, c.private_key_env, c.private_key_ciphertext].filter((x) => x !== undefined).length === 1,
    'give exactly one credential: password_env, password_ciphertext, private_key_env or private_key_ciphertext',
  );

export type SnowflakeConnectionFile = z.infer<typeof snowflakeConnectionSchema>;
