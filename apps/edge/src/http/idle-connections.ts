import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type ConfigStore, failureSubject } from '#common';

/** Idle connections one client address may keep open; its oldest idle one closes beyond. */
export const MAX_IDLE_PER_ADDRESS = 64;
/**
 * Only a connection idle this long may be closed for it: a busy client's pool (connections idle
 * for the moments between its requests) is never touched, only hoarded ones are.
 */
export const MIN_IDLE_MS = 5_000;
const SWEEP_MS = 1_000;

interface Tracked {
  address: string;
  /** Requests in progress on the connection (answers still being written). */
  busy: number;
  /** When it last became idle (connected, or its last answer ended). */
  idleSince: number;
}

/**
 * One client's idle sockets must not hurt others (SPEC §9 v2): each open connection costs a file
 * descriptor and memory until Node's timeouts close it (`request_timeout` for one that never
 * sends a request, the keep-alive timeout after one), and a client can open thousands in that
 * time. Per client address (an IPv6 /64 counts as one), at most MAX_IDLE_PER_ADDRESS connections
 * may sit idle (connected and not serving a request) for MIN_IDLE_MS or longer; beyond that the
 * address's longest-idle ones are closed (checked as connections arrive and every second). A
 * connection serving a request (a long SSE stream included), or idle only between a busy
 * client's requests, is never closed here.
 *
 * Off with `server.trust_proxy`: then every connection comes from the proxy, whose pool of idle
 * connections is its own business (its clients are limited by address in admission instead).
 */
export class IdleConnections {
  private readonly sockets = new WeakMap<Socket, Tracked>();
  /** Per address: its idle connections, longest idle first (a Set keeps insertion order). */
  private readonly idle = new Map<string, Set<Socket>>();
  private sweeper?: NodeJS.Timeout;

  constructor(
    private readonly config: ConfigStore,
    private readonly maxIdle = MAX_IDLE_PER_ADDRESS,
    private readonly minIdleMs = MIN_IDLE_MS,
    private readonly now: () => number = Date.now,
  ) {}

  attach(server: Server): void {
    server.on('connection', (socket: Socket) => this.connected(socket));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.started(req, res));
    this.sweeper = setInterval(() => {
      for (const [address, idle] of this.idle)
        if (idle.size > this.maxIdle) this.trim(address, idle);
    }, SWEEP_MS);
    this.sweeper.unref();
    server.once('close', () => clearInterval(this.sweeper));
  }

  /** Idle connections of an address (for tests and metrics). */
  idleCount(address: string): number {
    return this.idle.get(address)?.size ?? 0;
  }

  private connected(socket: Socket): void {
    if (this.config.current.server.trust_proxy) return;
    const address = failureSubject(unmapped(socket.remoteAddress ?? 'unknown'));
    this.sockets.set(socket, { address, busy: 0, idleSince: this.now() });
    socket.once('close', () => this.forget(socket, address));
    this.becameIdle(socket, address);
  }

  private started(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    const tracked = this.sockets.get(socket);
    if (!tracked) return;
    if (tracked.busy++ === 0) this.idle.get(tracked.address)?.delete(socket);
    res.once('close', () => {
      if (--tracked.busy === 0 && !socket.destroyed) {
        tracked.idleSince = this.now();
        this.becameIdle(socket, tracked.address);
      }
    });
  }

  private becameIdle(socket: Socket, address: string): void {
    let idle = this.idle.get(address);
    if (!idle) {
      idle = new Set();
      this.idle.set(address, idle);
    }
    idle.add(socket);
    if (idle.size > this.maxIdle) this.trim(address, idle);
  }

  /** Closes the longest-idle connections of an address beyond the bound, if idle long enough. */
  private trim(address: string, idle: Set<Socket>): void {
    const before = this.now() - this.minIdleMs;
    for (const socket of idle) {
      if (idle.size <= this.maxIdle) return;
      if ((this.sockets.get(socket)?.idleSince ?? 0) > before) return;
      idle.delete(socket);
      socket.destroy();
    }
    if (idle.size === 0) this.idle.delete(address);
  }

  private forget(socket: Socket, address: string): void {
    const idle = this.idle.get(address);
    if (!idle) return;
    idle.delete(socket);
    if (idle.size === 0) this.idle.delete(address);
  }
}

function unmapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
