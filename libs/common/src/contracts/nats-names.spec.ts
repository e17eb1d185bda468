import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ConfigStore } from '../config/config-store.js';
import { type NatsNames, natsNames, natsNamesAtStart } from './nats-names.js';
import { AUTH_KEY_VERIFY, AUTH_KEYS_CHANGED, EDGE_SESSION_CLOSED } from './subjects.js';

/** Every name of a deployment, as one flat record (the functions at two sample arguments). */
function everyName(names: NatsNames): Record<string, string> {
  return {
    eventsStream: names.eventsStream,
    eventsSubjects: names.eventsSubjects,
    analyticsDurable: names.analyticsDurable,
    keysBucket: names.keysBucket,
    pinsBucket: names.pinsBucket,
    'eventSubject(search)': names.eventSubject('search'),
    'eventSubject()': names.eventSubject(''),
    [AUTH_KEY_VERIFY]: names.busSubject(AUTH_KEY_VERIFY),
    [AUTH_KEYS_CHANGED]: names.busSubject(AUTH_KEYS_CHANGED),
    [EDGE_SESSION_CLOSED]: names.busSubject(EDGE_SESSION_CLOSED),
  };
}

/** The subject a wildcard stream subject stands for, as a RegExp over concrete subjects. */
function matcher(wildcard: string): RegExp {
  const escaped = wildcard.replace(/\./g, '\\.').replace(/\\\.>$/, '\\..+');
  return new RegExp(`^${escaped}$`);
}

describe('natsNames', () => {
  it('keeps the v1 names exactly without a prefix (SPEC §5, §7)', () => {
    expect(everyName(natsNames())).toEqual({
      eventsStream: 'MCP_EVENTS',
      eventsSubjects: 'mcp.events.v1.>',
      analyticsDurable: 'analytics',
      keysBucket: 'MCP_KEYS',
      pinsBucket: 'MCP_PINS',
      'eventSubject(search)': 'mcp.events.v1.search',
      'eventSubject()': 'mcp.events.v1._unknown',
      'auth.key.verify.v1': 'auth.key.verify.v1',
      'auth.keys.changed.v1': 'auth.keys.changed.v1',
      'edge.session.closed.v1': 'edge.session.closed.v1',
    });
    expect(natsNames().prefix).toBeUndefined();
  });

  it('prefixes every name: subjects with a token, stream, consumer and bucket with an underscore', () => {
    expect(everyName(natsNames('acme-prod'))).toEqual({
      eventsStream: 'acme-prod_MCP_EVENTS',
      eventsSubjects: 'acme-prod.mcp.events.v1.>',
      analyticsDurable: 'acme-prod_analytics',
      keysBucket: 'acme-prod_keys',
      pinsBucket: 'acme-prod_pins',
      'eventSubject(search)': 'acme-prod.mcp.events.v1.search',
      'eventSubject()': 'acme-prod.mcp.events.v1._unknown',
      'auth.key.verify.v1': 'acme-prod.auth.key.verify.v1',
      'auth.keys.changed.v1': 'acme-prod.auth.keys.changed.v1',
      'edge.session.closed.v1': 'acme-prod.edge.session.closed.v1',
    });
  });

  it.each([
    ['no prefix and a prefix', undefined, 'mcpgw'],
    ['two prefixes', 'blue', 'green'],
    ['a prefix and one it starts with', 'mcp', 'mcp_events'],
    ['the prefix "mcp" and no prefix', 'mcp', undefined],
    ['the prefix "MCP" and no prefix', 'MCP', undefined],
  ])(
    'gives %s no name in common, and streams capturing none of each other’s subjects',
    (_name, a, b) => {
      const [one, other] = [natsNames(a), natsNames(b)];
      const names = [everyName(one), everyName(other)].map((all) => new Set(Object.values(all)));
      expect([...names[0]].filter((name) => names[1].has(name))).toEqual([]);
      for (const [mine, theirs] of [
        [one, other],
        [other, one],
      ]) {
        const captures = matcher(mine.eventsSubjects);
        expect(captures.test(mine.eventSubject('search'))).toBe(true);
        const subjects = Object.values(everyName(theirs)).filter((name) => name.includes('.'));
        expect(subjects.filter((subject) => captures.test(subject))).toEqual([]);
      }
    },
  );

  it.each([
    ['empty', ''],
    ['with a dot', 'a.b'],
    ['with a space', 'a b'],
    ['with a wildcard', 'a>'],
    ['starting with _', '_INBOX'],
    ['starting with $', '$JS'],
    ['of 33 characters', 'p'.repeat(33)],
  ])('refuses a prefix %s', (_name, prefix) => {
    expect(() => natsNames(prefix)).toThrow(`invalid NATS prefix "${prefix}"`);
  });
});

describe('natsNamesAtStart', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'gw-nats-names-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function start(yaml: string) {
    const path = join(dir, 'gateway.yaml');
    writeFileSync(path, yaml);
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const config = ConfigStore.fromFile(path, {});
    const names = natsNamesAtStart(config, logger);
    const reload = (next: string) => {
      writeFileSync(path, next);
      expect(config.reload()).toBe(true);
    };
    const warnings = () => lines.filter((line) => line.level === 40);
    return { names, config, reload, warnings };
  }

  it('reads the prefix of the config at start', () => {
    expect(start('events: { nats_prefix: blue }\n').names.eventsStream).toBe('blue_MCP_EVENTS');
    expect(start('analytics: { retention_days: 7 }\n').names.eventsStream).toBe('MCP_EVENTS');
  });

  it('keeps its names when a reload changes the prefix, and logs that the change waits for a restart', () => {
    const { names, config, reload, warnings } = start('events: { nats_prefix: blue }\n');
    reload('events: { nats_prefix: green }\n');
    expect(config.current.events.nats_prefix).toBe('green');
    expect(names.eventsStream).toBe('blue_MCP_EVENTS');
    expect(names.busSubject(AUTH_KEY_VERIFY)).toBe('blue.auth.key.verify.v1');
    expect(warnings()).toEqual([
      expect.objectContaining({
        in_force: 'blue',
        configured: 'green',
        msg: expect.stringContaining('restart') as string,
      }),
    ]);
    // Other changes with the new prefix still written say it once, not on every reload.
    reload('events: { nats_prefix: green }\nanalytics: { retention_days: 7 }\n');
    expect(warnings()).toHaveLength(1);
  });

  it('logs a prefix removed on reload, and nothing for reloads that keep it', () => {
    const { reload, warnings } = start('events: { nats_prefix: blue }\n');
    reload('events: { nats_prefix: blue }\nanalytics: { retention_days: 7 }\n');
    expect(warnings()).toEqual([]);
    reload('analytics: { retention_days: 7 }\n');
    expect(warnings()).toEqual([expect.objectContaining({ in_force: 'blue', configured: null })]);
  });
});
