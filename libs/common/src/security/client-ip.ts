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

/**
 * An IPv4 client written as IPv6 is that IPv4 address: dual-stack sockets report IPv4 peers as
 * `::ffff:a.b.c.d`, and a proxy may write the same mapped address any legal way
 * (`::FFFF:c000:201`, `0:0:0:0:0:ffff:192.0.2.1`). Left as IPv6,
 * every such client would share the /64 `0:0:0:0::/64`, and one could block them all.
 */
function unmapped(address: string): string {
  if (isIP(address) !== 6) return address;
  const groups = expandIpv6(address).map((group) => parseInt(group, 16));
  if (!groups.slice(0, 5).every((group) => group === 0) || groups[5] !== 0xffff) return address;
  return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
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
