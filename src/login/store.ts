// Sign-ins gatehouse login remembers, to refresh the token without a browser: one entry per
// (Gatehouse, org), in <config dir>/gatehouse/logins.json, mode 0600 in a 0700 directory. It
// holds the refresh token (a credential: nowhere else, never printed) and what a refresh
// needs without asking Gatehouse again (the provider's endpoints, the client, where the
// pgpass line goes).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { loginDocumentSchema } from './document.ts';
import { writePrivateFile } from './pgpass.ts';

const savedLoginSchema = z.object({
  /** `<gatehouse url>|<org>`. */
  key: z.string(),
  server: z.string(),
  document: loginDocumentSchema,
  token_endpoint: z.string(),
  jwks_uri: z.string(),
  pg_host: z.string(),
  pg_port: z.number().int(),
  pgpass: z.string(),
  email: z.string(),
  /** Seconds since the epoch. */
  expires_at: z.number(),
  refresh_token: z.string().optional(),
});
export type SavedLogin = z.infer<typeof savedLoginSchema>;

/** GATEHOUSE_CONFIG_DIR, else $XDG_CONFIG_HOME/gatehouse, else ~/.config/gatehouse (%APPDATA%\gatehouse on Windows). */
export function configDir(env: NodeJS.ProcessEnv, home: string, platform: NodeJS.Platform = process.platform): string {
  if (env.GATEHOUSE_CONFIG_DIR) return env.GATEHOUSE_CONFIG_DIR;
  if (platform === 'win32') return join(env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'gatehouse');
  return join(env.XDG_CONFIG_HOME || join(home, '.config'), 'gatehouse');
}

export const loginKey = (server: string, org: string) => `${server}|${org}`;

export class LoginStore {
  private readonly file: string;
  constructor(private readonly dir: string) {
    this.file = join(dir, 'logins.json');
  }

  all(): SavedLogin[] {
    if (!existsSync(this.file)) return [];
    // A file from another version, cut short or edited by hand: its sign-ins are forgotten, not guessed at.
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch {
      return [];
    }
    const parsed = z.array(savedLoginSchema).safeParse(json);
    return parsed.success ? parsed.data : [];
  }

  find(key: string): SavedLogin | undefined {
    return this.all().find((l) => l.key === key);
  }

  save(login: SavedLogin): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const others = this.all().filter((l) => l.key !== login.key);
    writePrivateFile(this.file, `${JSON.stringify([...others, login], null, 2)}\n`);
  }

  forget(key: string): void {
    if (!existsSync(this.file)) return;
    writePrivateFile(
      this.file,
      `${JSON.stringify(
        this.all().filter((l) => l.key !== key),
        null,
        2,
      )}\n`,
    );
  }
}
