import fc from 'fast-check';
import { GatewayError } from '#common';
import { recordedExchange } from '../../../../test/support/exchange.js';
import { parseJsonRpcBody } from '../jsonrpc/messages.js';
import { SseFramingError, SseParser } from '../proxy/sse-parser.js';
import { MessageTap } from '../tap/message-tap.js';
import { testCatalog } from '../../../../test/support/tool-gate.js';
import type { ToolGate } from '../pins/tool-catalog.js';

// Property tests of the edge's parsing: whatever a client sends, the parser either classifies it
// or refuses it with a GatewayError (never crashes, never hangs), and nothing the tap lets through
// can be read by a backend as a hidden tool.
let filter: ToolGate;
beforeAll(async () => {
  filter = (await testCatalog()).gate(['secret_*', 'get-env']);
});
const exchange = recordedExchange().recorder;
const hidden = fc.constantFrom('secret_delete', 'secret_x', 'get-env');
const visible = fc.constantFrom('echo', 'get-sum', 'Secret_delete', 'secretdelete');

/** Encodes a string as a JSON string literal with random \\u escapes. */
const escaped = (value: string) =>
  fc
    .array(fc.boolean(), { minLength: value.length, maxLength: value.length })
    .map(
      (flags) =>
        `"${[...value].map((char, i) => (flags[i] ? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}` : char)).join('')}"`,
    );

const toolCall = fc
  .tuple(
    fc.oneof(hidden, visible),
    fc.option(fc.oneof(hidden, visible)),
    // null: sent as a notification, which must never carry a hidden call past the tap either
    fc.option(fc.integer({ min: 1, max: 1e6 })),
    fc.boolean(),
  )
  .chain(([name, duplicate, id, escapeKey]) =>
    fc
      .tuple(escaped(name), duplicate === null ? fc.constant(null) : escaped(duplicate))
      .map(([nameLiteral, dupLiteral]) => {
        const key = escapeKey ? '"n\\u0061me"' : '"name"';
        const dup = dupLiteral === null ? '' : `,"name":${dupLiteral}`;
        const idField = id === null ? '' : `"id":${id},`;
        return `{"jsonrpc":"2.0",${idField}"method":"tools\\/call","params":{${key}:${nameLiteral}${dup},"arguments":{}}}`;
      }),
  );

const body = fc.oneof(
  toolCall,
  fc.array(toolCall, { minLength: 1, maxLength: 5 }).map((calls) => `[${calls.join(',')}]`),
  fc.string(),
  fc.json(),
);

describe('edge parsing under generated input', () => {
  it('classifies or refuses every body, and never forwards a hidden tool', () => {
    fc.assert(
      fc.property(body, (text) => {
        let parsed;
        try {
          parsed = parseJsonRpcBody(Buffer.from(text));
        } catch (error) {
          expect(error).toBeInstanceOf(GatewayError);
          return;
        }
        const forward = parsed.messages.filter(
          (message) => MessageTap.inbound(message, 0, filter, exchange).deliver,
        );
        // What the backend reads: the re-serialised checked objects (upstream/http-passthrough.ts).
        const backendView = JSON.parse(
          JSON.stringify(parsed.batch ? forward.map((m) => m.value) : (forward[0]?.value ?? null)),
        ) as unknown;
        for (const message of [backendView].flat()) {
          const call = message as { method?: unknown; params?: { name?: unknown } } | null;
          if (call?.method === 'tools/call')
            expect(filter.allowsCall(call.params?.name)).toBe(true);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('parses any chunking of an SSE stream into the same events, or refuses it as framing', () => {
    const event = fc
      .tuple(fc.option(fc.string({ unit: 'grapheme-ascii', maxLength: 8 })), fc.json())
      .map(
        ([id, data]) =>
          `${id !== null && !/[\r\n]/.test(id) ? `id: ${id}\n` : ''}data: ${data.replace(/[\r\n]/g, '')}\n\n`,
      );
    fc.assert(
      fc.property(
        fc.array(event, { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 20 }),
        (events, cuts) => {
          const stream = Buffer.from(events.join(''));
          const whole = new SseParser().push(stream).map((e) => e.raw);
          const parser = new SseParser();
          const pieces: string[] = [];
          let offset = 0;
          for (const cut of cuts) {
            if (offset >= stream.length) break;
            pieces.push(...parser.push(stream.subarray(offset, offset + cut)).map((e) => e.raw));
            offset += cut;
          }
          pieces.push(...parser.push(stream.subarray(offset)).map((e) => e.raw));
          expect(pieces).toEqual(whole);
          expect(whole.join('')).toBe(events.join(''));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses arbitrary bytes as framing without crashing or growing without bound', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const parser = new SseParser(1024);
        try {
          parser.push(Buffer.from(bytes));
        } catch (error) {
          expect(error).toBeInstanceOf(SseFramingError);
        }
        expect(parser.pending.length).toBeLessThanOrEqual(4096);
      }),
      { numRuns: 500 },
    );
  });
});
