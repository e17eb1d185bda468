import { expandString, parseAndExpand } from './expand.js';
import { ConfigError, parseConfig } from './load.js';

function expand(
  value: string,
  env: Record<string, string | undefined>,
): { value: string; unset: string[] } {
  const unset: string[] = [];
  return { value: expandString(value, env, (name) => unset.push(name)), unset };
}

function configError(text: string, env: Record<string, string | undefined> = {}): ConfigError {
  try {
    parseConfig(text, env, 'gateway.yaml');
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

describe('expandString', () => {
  it.each<[string, string, Record<string, string | undefined>, string]>([
    ['a variable', 'Bearer ${TOKEN}', { TOKEN: 'abc' }, 'Bearer abc'],
    ['several variables in one string', '${A}-${B}', { A: '1', B: '2' }, '1-2'],
    ['a default when the variable is unset', '${PORT:-8080}', {}, '8080'],
    [
      'the value over the default when the variable is set',
      '${PORT:-8080}',
      { PORT: '9090' },
      '9090',
    ],
    [
      'the default when the variable is set to an empty string',
      '${PORT:-8080}',
      { PORT: '' },
      '8080',
    ],
    ['an empty default', 'x${SUFFIX:-}y', {}, 'xy'],
    [
      'a default holding a URL',
      '${URL:-http://127.0.0.1:3001/mcp}',
      {},
      'http://127.0.0.1:3001/mcp',
    ],
    [
      '$${ as a literal ${ without expanding',
      'cost $${NOT_EXPANDED}',
      { NOT_EXPANDED: 'no' },
      'cost ${NOT_EXPANDED}',
    ],
    ['a lone $ untouched', 'price: 5$ and $HOME', { HOME: '/root' }, 'price: 5$ and $HOME'],
    [
      'a value that itself contains ${ without re-expanding it',
      '${A}',
      { A: '${B}', B: 'no' },
      '${B}',
    ],
  ])('expands %s', (_name, input, env, expected) => {
    expect(expand(input, env)).toEqual({ value: expected, unset: [] });
  });

  it('reports each unset variable without a default by name', () => {
    expect(expand('${A}/${B:-b}/${C}', {})).toEqual({ value: '/b/', unset: ['A', 'C'] });
  });
});

describe('parseAndExpand', () => {
  it('expands variables in nested maps and in list items (args)', () => {
    const source = [
      'namespaces:',
      '  fs:',
      '    upstream:',
      '      command: ${CMD:-npx}',
      '      args: ["-y", "${PKG}", "${ROOT:-/srv/data}"]',
      '      env: { TOKEN: "Bearer ${TOKEN}" }',
    ].join('\n');
    const { value, issues } = parseAndExpand(source, { PKG: 'server-fs', TOKEN: 't0k' });
    expect(issues).toEqual([]);
    expect(value).toEqual({
      namespaces: {
        fs: {
          upstream: {
            command: 'npx',
            args: ['-y', 'server-fs', '/srv/data'],
            env: { TOKEN: 'Bearer t0k' },
          },
        },
      },
    });
  });

  it('expands variables in maps inside lists', () => {
    const { value, issues } = parseAndExpand('keys:\n  - id: a\n    key: ${A_KEY}\n', {
      A_KEY: 'secret',
    });
    expect(issues).toEqual([]);
    expect(value).toEqual({ keys: [{ id: 'a', key: 'secret' }] });
  });

  it('does not expand map keys', () => {
    const { value } = parseAndExpand('"${NAME}": 1\n', { NAME: 'x' });
    expect(value).toEqual({ ['${NAME}']: 1 });
  });

  it('keeps $${ as a literal ${', () => {
    const { value, issues } = parseAndExpand('a: "$${HOME}"\n', { HOME: '/root' });
    expect(issues).toEqual([]);
    expect(value).toEqual({ a: '${HOME}' });
  });

  it('leaves non-string scalars alone', () => {
    expect(parseAndExpand('a: 5\nb: true\nc: null\n', {}).value).toEqual({
      a: 5,
      b: true,
      c: null,
    });
  });
});

describe('unset variables in a config file', () => {
  const source = [
    'keys:', //                                   line 1
    '  - id: alice', //                           line 2
    '    key_sha256: ' + 'a'.repeat(64), //       line 3
    '  - id: ops', //                             line 4
    '    key: ${OPS_KEY}', //                     line 5
    '    namespaces: ["*"]', //                   line 6
  ].join('\n');

  it('names the variable, its path and its line', () => {
    const error = configError(source);
    expect(error.issues).toEqual([
      { path: 'keys.1.key', message: 'environment variable OPS_KEY is not set (line 5)' },
    ]);
    expect(error.message).toContain('keys.1.key: environment variable OPS_KEY is not set (line 5)');
    expect(error.message).toContain('gateway.yaml');
  });

  it('reports a variable set to the empty string without default like an unset one', () => {
    expect(configError(source, { OPS_KEY: '' }).issues).toEqual([
      { path: 'keys.1.key', message: 'environment variable OPS_KEY is not set (line 5)' },
    ]);
  });

  it('accepts the file once the variable is set', () => {
    expect(parseConfig(source, { OPS_KEY: 'a-long-enough-key-0123' }).keys[1]?.key).toBe(
      'a-long-enough-key-0123',
    );
  });

  it('reports the path of an unset variable inside a list', () => {
    const error = configError(
      'namespaces:\n  fs:\n    upstream:\n      command: npx\n      args: ["-y", "${PKG}"]\n',
    );
    expect(error.issues).toEqual([
      {
        path: 'namespaces.fs.upstream.args.1',
        message: 'environment variable PKG is not set (line 5)',
      },
    ]);
  });

  it('reports every unset variable at once', () => {
    const error = configError(
      [
        'namespaces:',
        '  s:',
        '    upstream:',
        '      url: ${SEARCH_URL}',
        '      headers: { Authorization: "Bearer ${SEARCH_TOKEN}" }',
      ].join('\n'),
    );
    expect(error.issues).toEqual([
      {
        path: 'namespaces.s.upstream.url',
        message: 'environment variable SEARCH_URL is not set (line 4)',
      },
      {
        path: 'namespaces.s.upstream.headers.Authorization',
        message: 'environment variable SEARCH_TOKEN is not set (line 5)',
      },
    ]);
  });
});

describe('YAML syntax errors', () => {
  it.each([
    ['an unclosed flow sequence', 'namespaces:\n  s:\n    tools: { allow: ["a", }\n', 3],
    ['a duplicate map key', 'server:\n  trust_proxy: true\n  trust_proxy: false\n', 3],
    ['a bad indentation', 'server:\n  trust_proxy: true\n max_body_bytes: 5\n', 3],
  ])('reports %s with its line', (_name, source, line) => {
    const error = configError(source);
    expect(error.issues[0]?.path).toBe('(file)');
    expect(error.issues[0]?.message).toMatch(new RegExp(`\\(line ${line}, column \\d+\\)$`));
  });

  it('never quotes the source: a stray brace before keys does not put their secrets in the error', () => {
    const secrets = ['sk-first-secret-1234567890', 'sk-second-secret-0987654321'];
    const source = [
      'keys:',
      `  - { id: a, key: ${secrets[0]} }}`,
      `  - { id: b, key: ${secrets[1]} }`,
      `  - id: c`,
      `    key: "${secrets[0]}-again"`,
      'namespaces: {}',
    ].join('\n');
    const error = configError(source);
    expect(error.issues.length).toBeGreaterThan(0);
    expect(error.issues.length).toBeLessThanOrEqual(5);
    for (const secret of secrets) expect(error.message).not.toContain(secret);
    expect(error.message).not.toContain('id:');
    expect(error.issues[0].message).toMatch(/line 2, column \d+/);
  });
});
