import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, type Dispatcher } from 'undici';

/**
 * The bench's reference point, not a product: the least a Node process can do to proxy a JSON
 * answer (the same `node:http` server and undici client the edge uses, one JSON.parse of the
 * answer, nothing else: no key, no limit, no filter, no event). Its ratio to direct is the
 * ceiling a single-process Node proxy reaches on this machine under the same load, which is what
 * the gateway's own ratio should be read against.
 *
 *   node dist/bench/support/bare-proxy.js <backend url>   → prints `BENCH_BARE_PROXY {"port":n}`
 */
const target = new URL(process.argv[2]);
const agent = new Agent({ connections: null });

function forward(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const parts: Buffer[] = [];
  let status = 502;
  let type = 'application/json';
  const handler: Dispatcher.DispatchHandler = {
    // Its presence tells undici this handler speaks the controller API (as the edge's does).
    onRequestStart() {},
    onResponseStart(_controller, statusCode, headers) {
      status = statusCode;
      type = String(headers['content-type'] ?? type);
    },
    onResponseData(_controller, chunk) {
      parts.push(chunk);
    },
    onResponseEnd() {
      const answer = parts.length === 1 ? parts[0] : Buffer.concat(parts);
      JSON.parse(answer.toString('utf8'));
      res.writeHead(status, { 'content-type': type, 'content-length': answer.length });
      res.end(answer);
    },
    onResponseError() {
      res.writeHead(502).end();
    },
  };
  agent.dispatch(
    {
      origin: target.origin,
      path: target.pathname,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: req.headers.accept ?? 'application/json',
      },
      body,
    },
    handler,
  );
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => forward(req, res, Buffer.concat(chunks)));
});
server.listen(0, '127.0.0.1', () => {
  console.log(
    `BENCH_BARE_PROXY ${JSON.stringify({ port: (server.address() as AddressInfo).port })}`,
  );
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
