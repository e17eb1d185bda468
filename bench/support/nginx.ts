import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type Proc, startProcess, tempDir, waitForHttp } from './processes.js';

/**
 * nginx as a reference relay in front of the fast backend, when the machine has it (Debian:
 * `apt-get install nginx`; the bench does not install it). One worker process, like the one
 * event loop of the edge and of the bare Node proxy; keep-alive to the backend, no access log:
 * the least nginx does to relay a JSON answer.
 */
export interface Nginx {
  url: string;
  proc: Proc;
  version: string;
  stop(): Promise<void>;
}

export function nginxBinary(): string | undefined {
  return [
    '/usr/sbin/nginx',
    '/usr/bin/nginx',
    '/usr/local/sbin/nginx',
    '/usr/local/bin/nginx',
  ].find(existsSync);
}

/** nginx relaying to `backendUrl`, or undefined when nginx is not installed. */
export async function startNginx(backendUrl: string): Promise<Nginx | undefined> {
  const bin = nginxBinary();
  if (!bin) return undefined;
  const dir = tempDir('nginx');
  const port = await freePort();
  const backend = new URL(backendUrl);
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
master_process on;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_requests 1000000;
  upstream backend { server ${backend.host}; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    location = /nginx-ready { return 200 "ok"; }
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const proc = startProcess('nginx', bin, ['-p', dir, '-c', join(dir, 'nginx.conf')]);
  const stop = async () => {
    await proc.stop('SIGQUIT');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForHttp(`http://127.0.0.1:${port}/nginx-ready`, proc);
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  // `nginx -v` writes to stderr.
  const version = spawnSync(bin, ['-v'], { encoding: 'utf8' })
    .stderr.trim()
    .replace(/^nginx version: nginx\//, '');
  return { url: `http://127.0.0.1:${port}${backend.pathname}`, proc, version, stop };
}
