// Rules load into the model; an invalid tree is refused with file, path and reason.
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RulesError, loadRules } from '../../src/config/load.ts';
import { effectiveLevel } from '../../src/policy/levels.ts';

const DEMO = resolve(import.meta.dirname, '../../rules');

function demoWith(file: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gh-rules-'));
  cpSync(DEMO, dir, { recursive: true });
  writeFileSync(join(dir, file), text);
  return dir;
}

function problemsOf(dir: string) {
  try {
    loadRules(dir);
  } catch (e) {
    if (e instanceof RulesError) return e.problems;
    throw e;
  }
  throw new Error('rules loaded but should have been refused');
}

describe('loadRules', () => {
  it('loads the demo: two orgs, users by email, topics of acme', () => {
    const rules = loadRules(DEMO);
    expect([...rules.orgs.keys()]).toEqual(['acme', 'globex']);
    expect(rules.users.get('hank@globex.example')?.org).toBe('globex');
    expect(rules.users.get('grace@acme.example')?.attributes).toEqual({ region: ['EMEA', 'APAC'] });
    expect(rules.users.get('frank@acme.example')?.attributes).toEqual({});
    const acme = rules.orgs.get('acme')!;
    expect([...acme.topics.keys()].sort()).toEqual(['customers', 'orders']);
    expect(acme.topics.get('customers')!.fields).not.toContain('email');
    expect(rules.version).toMatch(/^[0-9a-f]{12}$/);
  });

  it('the policy version changes with the rules', () => {
    const a = loadRules(DEMO).version;
    const b = loadRules(demoWith('acme/topics/orders.yaml', 'connection: warehouse\nbase: public.orders\nfields: [id]\n')).version;
    expect(a).not.toBe(b);
  });

  it('refuses a topic whose filter field is not one of its fields, naming file and path', () => {
    const dir = demoWith(
      'acme/topics/orders.yaml',
      'connection: warehouse\nbase: public.orders\nfields: [id]\naccess_filters:\n  - field: region\n    attribute: region\n',
    );
    expect(problemsOf(dir)).toEqual([{ file: 'acme/topics/orders.yaml', path: 'access_filters.0.field', reason: "region is not one of the topic's fields" }]);
  });

  it('refuses unknown keys, bad levels, bad YAML and unknown groups', () => {
    expect(problemsOf(demoWith('acme/topics/orders.yaml', 'connection: warehouse\nbase: orders\nfields: [id]\nfilters: []\n'))[0]).toMatchObject({
      file: 'acme/topics/orders.yaml',
    });
    const lvl = problemsOf(demoWith('acme/connections/warehouse.yaml', 'kind: embedded\npermissions:\n  default: superuser\n'));
    expect(lvl[0]).toMatchObject({ file: 'acme/connections/warehouse.yaml', path: 'permissions.default' });
    expect(problemsOf(demoWith('acme/topics/orders.yaml', 'connection: [warehouse\n'))[0].reason).toMatch(/not valid YAML/);
    const grp = problemsOf(demoWith('acme/connections/warehouse.yaml', 'kind: embedded\npermissions:\n  groups:\n    nobody: querier\n'));
    expect(grp[0]).toMatchObject({ path: 'permissions.groups.nobody', reason: 'unknown group nobody' });
  });

  it('refuses a plaintext password where a verifier belongs', () => {
    const dir = demoWith('globex/org.yaml', 'name: globex\nusers:\n  - email: hank@globex.example\n    scram: gatehouse-demo\n');
    const p = problemsOf(dir);
    expect(p[0]).toMatchObject({ file: 'globex/org.yaml', path: 'users.0.scram' });
    expect(JSON.stringify(p)).not.toContain('gatehouse-demo');
  });
});

describe('effectiveLevel: the highest of default, groups and own grant', () => {
  const rules = loadRules(DEMO);
  const wh = rules.orgs.get('acme')!.connections.get('warehouse')!;
  const level = (email: string) => effectiveLevel(rules.users.get(email)!, wh).level;

  it('matches DESIGN section 5', () => {
    expect(level('alice@acme.example')).toBe('connection_admin');
    expect(level('bob@acme.example')).toBe('query_topics');
    expect(level('erin@acme.example')).toBe('query_topics');
    expect(level('carol@acme.example')).toBe('querier');
    expect(level('dave@acme.example')).toBe('no_access');
  });

  it('a grant raises, none lowers', () => {
    const conn = {
      ...wh,
      permissions: { default: 'query_topics' as const, groups: { analysts: 'no_access' as const }, users: { 'carol@acme.example': 'no_access' as const } },
    };
    expect(effectiveLevel(rules.users.get('carol@acme.example')!, conn).level).toBe('query_topics');
    const raised = { ...wh, permissions: { ...wh.permissions, users: { 'dave@acme.example': 'querier' as const } } };
    expect(effectiveLevel(rules.users.get('dave@acme.example')!, raised)).toEqual({ level: 'querier', source: 'user grant' });
  });
});
