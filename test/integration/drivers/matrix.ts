// The driver matrix's shared parts (issue 16): what each demo user must see (from
// rules/acme/data/acme.sql), running the Python and Java case scripts, and the rule for a
// missing driver: under CI=true the suite fails naming the package, elsewhere it is skipped
// with a message that says what to install.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { beforeAll, describe } from 'vitest';
import { DEMO_PASSWORD } from '../../helpers/gatehouse.ts';

export const PYTHON = '/usr/bin/python3';
export const JDBC_JAR = '/usr/share/java/postgresql.jar';
export const CI = process.env.CI === 'true';
export const BOB = 'bob@acme.example';
export const CAROL = 'carol@acme.example';
export const USERS = [BOB, CAROL] as const;
export type User = (typeof USERS)[number];

/** What each user sees of the demo data. bob: query_topics, EMEA rows only, no `email`, no `employees`; carol: querier, the whole warehouse. */
export const SEES = {
  [BOB]: {
    sessionUser: 'bob@acme.example',
    regions: [['EMEA', 1667]] as [string, number][],
    firstIds: [2, 5, 8],
    ordersCount: 1667,
    idSum: 4169167,
    /** id <= 1000 AND status = 'paid' */
    paidUpTo1000: 83,
    /** orders, customers, orders paid with id <= 100, 1000, 2000 */
    upTo: { 100: [33, 33, 8], 1000: [333, 100, 83], 2000: [667, 100, 167] } as Record<number, number[]>,
    /** id <= 2000 by region */
    regionsUpTo2000: [['EMEA', 667]] as [string, number][],
    firstOrder: { id: 2, amount: '163.38', orderedAt: '2024-01-01T06:00:00+00:00' },
    customersCount: 100,
    tables: ['customers', 'orders'],
    customersColumns: ['id', 'name', 'region', 'created_at'],
    /** The first rows of COPY (SELECT id, region FROM orders ORDER BY id). */
    copyHead: ['2,EMEA', '5,EMEA'],
    /** bob's refusal: SELECT * FROM employees; carol's: an INSERT (read-only querier). Both 42501. */
    refused: '42501',
  },
  [CAROL]: {
    sessionUser: 'gatehouse_querier',
    regions: [
      ['AMER', 1666],
      ['APAC', 1667],
      ['EMEA', 1667],
    ] as [string, number][],
    firstIds: [1, 2, 3],
    ordersCount: 5000,
    idSum: 12502500,
    paidUpTo1000: 250,
    upTo: { 100: [100, 100, 25], 1000: [1000, 300, 250], 2000: [2000, 300, 500] } as Record<number, number[]>,
    regionsUpTo2000: [
      ['AMER', 666],
      ['APAC', 667],
      ['EMEA', 667],
    ] as [string, number][],
    firstOrder: { id: 1, amount: '84.19', orderedAt: '2024-01-01T03:00:00+00:00' },
    customersCount: 300,
    tables: ['customers', 'employees', 'orders'],
    customersColumns: ['id', 'name', 'email', 'region', 'created_at'],
    copyHead: ['1,APAC', '2,EMEA'],
    refused: '42501',
  },
};

/** The prepared-statement cache cases' expected answers: orders, customers, paid orders for 100, 1000, 2000, twice. */
export function cacheRounds(user: User): number[] {
  const once = [100, 1000, 2000].flatMap((l) => SEES[user].upTo[l]);
  return [...once, ...once];
}

/**
 * A suite that needs a driver. `missing` says what is absent and how to install it (undefined when present).
 * Under CI=true a missing driver fails every test of the suite; outside CI the suite is skipped, saying why.
 */
export function driverSuite(title: string, missing: string | undefined, body: () => void): void {
  if (missing && !CI) {
    console.warn(`[driver matrix] skipping "${title}": ${missing} (under CI=true this fails)`);
    describe.skip(title, body);
    return;
  }
  describe(title, () => {
    if (missing) {
      beforeAll(() => {
        throw new Error(`${title}: ${missing}`);
      });
    }
    body();
  });
}

/** undefined when /usr/bin/python3 imports every module, else the message naming the Debian packages. */
export function missingPython(modules: string[], packages: string[]): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', `import ${modules.join(', ')}`], { stdio: 'pipe' });
    return undefined;
  } catch {
    return `${PYTHON} cannot import ${modules.join(', ')}: apt-get update && apt-get install -y ${packages.join(' ')} (bash .ci/run does this)`;
  }
}

export function missingJdbc(): string | undefined {
  return existsSync(JDBC_JAR)
    ? undefined
    : `the PostgreSQL JDBC driver is missing at ${JDBC_JAR}: apt-get update && apt-get install -y libpostgresql-jdbc-java (bash .ci/run does this)`;
}

export function missingCommand(cmd: string, pkg: string): string | undefined {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' });
    return undefined;
  } catch {
    return `${cmd} is not on PATH: apt-get update && apt-get install -y ${pkg} (bash .ci/run does this)`;
  }
}

export function run(cmd: string, args: string[], timeout = 120_000): Promise<string> {
  return new Promise((done, fail) => {
    execFile(cmd, args, { timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? fail(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}\n${stdout}`)) : done(stdout),
    );
  });
}

export type Outcome = { ok: true; value: unknown } | { ok: false; sqlstate: string | null; error: string; trace?: string };
export type Outcomes = Record<string, Outcome>;

/** Runs python/<script> as `<port> <user> <password> [variant]`; its last line is the JSON of its cases. */
export async function runPython(script: string, port: number, user: string, variant?: string): Promise<Outcomes> {
  const out = await run(PYTHON, [resolve(import.meta.dirname, 'python', script), String(port), user, DEMO_PASSWORD, ...(variant ? [variant] : [])]);
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Outcomes;
}

/** Runs java/DriverMatrix.java: lines "<case>\tOK\t<value>" or "<case>\tERR\t<SQLSTATE>\t<message>". */
export async function runJava(port: number, user: string): Promise<Outcomes> {
  const out = await run('java', ['-cp', JDBC_JAR, resolve(import.meta.dirname, 'java/DriverMatrix.java'), String(port), user, DEMO_PASSWORD]);
  const outcomes: Outcomes = {};
  for (const line of out.trim().split('\n')) {
    const [name, status, a, ...rest] = line.split('\t');
    outcomes[name] = status === 'OK' ? { ok: true, value: a ?? '' } : { ok: false, sqlstate: a ?? null, error: rest.join('\t') };
  }
  return outcomes;
}

/** The value of a case that must have succeeded; a failed case fails the test with its SQLSTATE and message. */
export function value<T = unknown>(outcomes: Outcomes | undefined, name: string): T {
  const o = outcomes?.[name];
  if (!o) throw new Error(`case ${name} did not run (the script ended early?)`);
  if (!o.ok) {
    throw new Error(`case ${name} failed: SQLSTATE ${o.sqlstate ?? '-'}: ${o.error}${o.trace ? `\n${o.trace}` : ''}`);
  }
  return o.value as T;
}
