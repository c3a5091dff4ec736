// The demo organization (DESIGN 5) as DecisionContexts, for unit tests of decide().
import type { Attributes, Level, Topic } from '../../../src/config/model.ts';
import type { DecisionContext } from '../../../src/policy/decision.ts';

const regionFilter = [{ field: 'region', attribute: 'region', values_for_unfiltered: ['ALL'] }];

export const orders: Topic = {
  name: 'orders',
  org: 'acme',
  connection: 'warehouse',
  base: { schema: 'public', table: 'orders' },
  fields: ['id', 'customer_id', 'region', 'amount', 'status', 'ordered_at'],
  access_filters: regionFilter,
};
export const customers: Topic = {
  name: 'customers',
  org: 'acme',
  connection: 'warehouse',
  base: { schema: 'public', table: 'customers' },
  fields: ['id', 'name', 'region', 'created_at'],
  access_filters: regionFilter,
};

export const demoTopics = new Map<string, Topic>([
  ['orders', orders],
  ['customers', customers],
]);

/** The same topics with the column types the server reads from the warehouse catalog. */
export const typedTopics = new Map<string, Topic>([
  [
    'orders',
    { ...orders, columnTypes: { id: 'int4', customer_id: 'int4', region: 'text', amount: 'numeric', status: 'text', ordered_at: 'timestamptz' } } as Topic,
  ],
  ['customers', { ...customers, columnTypes: { id: 'int4', name: 'text', region: 'text', created_at: 'timestamptz' } } as Topic],
]);

export function ctxFor(user: string, level: Level, attributes: Attributes, opts: { allowWrites?: boolean; topics?: Map<string, Topic> } = {}): DecisionContext {
  return {
    org: 'acme',
    user,
    level,
    attributes,
    connection: { name: 'warehouse', allowWrites: opts.allowWrites ?? false, topicsSchema: 'topics' },
    topics: opts.topics ?? demoTopics,
  };
}

export const bob = ctxFor('bob@acme.example', 'query_topics', { region: ['EMEA'] });
export const grace = ctxFor('grace@acme.example', 'query_topics', { region: ['EMEA', 'APAC'] });
export const erin = ctxFor('erin@acme.example', 'query_topics', { region: ['ALL'] });
export const frank = ctxFor('frank@acme.example', 'query_topics', {});
export const carol = ctxFor('carol@acme.example', 'querier', {});
export const alice = ctxFor('alice@acme.example', 'connection_admin', {});
