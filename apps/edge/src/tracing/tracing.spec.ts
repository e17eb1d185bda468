import { hasTraceMeta, traceOptionsFromEnv, writeTraceMeta } from './tracing.js';

const CONTEXT = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };

describe('traceOptionsFromEnv', () => {
  it.each<[string, Record<string, string>, boolean]>([
    ['nothing set: off', {}, false],
    ['an OTLP endpoint: on', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true],
    [
      'a traces endpoint: on',
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' },
      true,
    ],
    [
      'the SDK disabled: off',
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'TRUE' },
      false,
    ],
    [
      'the traces exporter none: off',
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' },
      false,
    ],
    ['only a service name: off', { OTEL_SERVICE_NAME: 'edge' }, false],
  ])('%s', (_name, env, on) => {
    expect(traceOptionsFromEnv(env) !== undefined).toBe(on);
  });

  it('refuses gRPC at boot rather than exporting nowhere', () => {
    expect(() =>
      traceOptionsFromEnv({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      }),
    ).toThrow(/grpc is not supported/);
  });
});

describe('writeTraceMeta', () => {
  it.each<[string, Record<string, unknown>, unknown]>([
    ['no params: adds them', { method: 'ping' }, { _meta: CONTEXT }],
    [
      'params without _meta',
      { method: 'tools/call', params: { name: 'echo' } },
      { name: 'echo', _meta: CONTEXT },
    ],
    [
      "replaces the client's context, keeps the rest of _meta",
      {
        method: 'tools/call',
        params: { name: 'echo', _meta: { traceparent: 'x', tracestate: 'y', progressToken: 1 } },
      },
      { name: 'echo', _meta: { progressToken: 1, ...CONTEXT } },
    ],
  ])('%s', (_name, value, params) => {
    expect(writeTraceMeta(value, CONTEXT)).toBe(true);
    expect(value.params).toEqual(params);
  });

  it.each<[string, Record<string, unknown>]>([
    ['positional params', { method: 'm', params: [1, 2] }],
    ['a _meta that is not an object', { method: 'm', params: { _meta: 'text' } }],
  ])('leaves a message with %s alone', (_name, value) => {
    const before = structuredClone(value);
    expect(writeTraceMeta(value, CONTEXT)).toBe(false);
    expect(value).toEqual(before);
  });

  it("never changes the client's own _meta object", () => {
    const meta = { traceparent: 'client' };
    const value = { method: 'tools/call', params: { _meta: meta } };
    writeTraceMeta(value, CONTEXT);
    expect(meta).toEqual({ traceparent: 'client' });
  });
});

describe('hasTraceMeta', () => {
  it.each<[string, Record<string, unknown>, boolean]>([
    ['no params', { method: 'ping' }, false],
    ['a _meta without traceparent', { params: { _meta: { progressToken: 1 } } }, false],
    ['a _meta with traceparent', { params: { _meta: { traceparent: 'x' } } }, true],
    ['a null _meta', { params: { _meta: null } }, false],
  ])('%s', (_name, value, has) => {
    expect(hasTraceMeta(value)).toBe(has);
  });
});
