import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/**
 * The client address that failed key attempts are counted against (SPEC §3 `auth.max_failures`).
 *
 * The socket's peer address, unless `server.trust_proxy` is on: then the last address of
 * `X-Forwarded-For`, the one the proxy in front of the edge appended (or wrote, as the compose
 * load balancer does). Addresses further left were written by whoever sent the request and
 * can be forged at will, which would let an attacker rotate them past the failure limit.
 */
export function clientIp(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = req.headers['x-forwarded-for'];
    const header = Array.isArray(forwarded) ? forwarded[forwarded.length - 1] : forwarded;
    const last = header?.split(',').pop()?.trim();
    if (last && isIP(unmapped(last))) return unmapped(last);
  }
  return unmapped(req.socket.remoteAddress ?? 'unknown');
}

/**
 * What a failure counter is kept for: the IPv4 address, or the /64 of an IPv6 address (one
 * host usually owns a whole /64, so counting single IPv6 addresses would count nothing).
 */
export function failureSubject(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  return `${expandIpv6(ip).slice(0, 4).join(':')}::/64`;
}

function unmapped(address: string): string {
  // Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d.
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

function expandIpv6(ip: string): string[] {
  let address = ip.split('%')[0].toLowerCase();
  // An embedded IPv4 tail (e.g. 64:ff9b::192.0.2.1) stands for the last two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    address = `${address.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((group) => group.replace(/^0+(?=.)/, ''));
}
