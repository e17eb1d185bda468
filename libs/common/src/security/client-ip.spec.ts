import type { IncomingMessage } from 'node:http';
import { clientIp, failureSubject } from './client-ip.js';

function request(
  remoteAddress: string | undefined,
  forwardedFor?: string | string[],
): IncomingMessage {
  return {
    headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
    socket: { remoteAddress },
  } as unknown as IncomingMessage;
}

describe('clientIp', () => {
  it.each([
    [
      'the socket address when proxies are not trusted',
      request('10.0.0.1', '1.2.3.4'),
      false,
      '10.0.0.1',
    ],
    ['the socket address without X-Forwarded-For', request('10.0.0.1'), true, '10.0.0.1'],
    [
      'the only X-Forwarded-For address behind a trusted proxy',
      request('10.0.0.1', '203.0.113.9'),
      true,
      '203.0.113.9',
    ],
    [
      'the address the trusted proxy appended, not the forgeable ones before it',
      request('10.0.0.1', '6.6.6.6, 7.7.7.7, 203.0.113.9'),
      true,
      '203.0.113.9',
    ],
    [
      'the last of repeated X-Forwarded-For headers',
      request('10.0.0.1', ['6.6.6.6', '203.0.113.9']),
      true,
      '203.0.113.9',
    ],
    [
      'the socket address when X-Forwarded-For is garbage',
      request('10.0.0.1', 'not-an-ip'),
      true,
      '10.0.0.1',
    ],
    [
      'an IPv4 peer of a dual-stack socket as IPv4',
      request('::ffff:192.0.2.7'),
      false,
      '192.0.2.7',
    ],
    ['an IPv6 peer as is', request('2001:db8::1'), false, '2001:db8::1'],
    ['"unknown" without a socket address', request(undefined), false, 'unknown'],
  ])('takes %s', (_label, req, trustProxy, expected) => {
    expect(clientIp(req, trustProxy)).toBe(expected);
  });
});

describe('failureSubject', () => {
  it.each([
    ['an IPv4 address', '192.0.2.7', '192.0.2.7'],
    ['a compressed IPv6 address', '2001:db8::1', '2001:db8:0:0::/64'],
    ['a full IPv6 address', '2001:0db8:0001:0002:0003:0004:0005:0006', '2001:db8:1:2::/64'],
    ['an IPv6 address with an embedded IPv4 tail', '64:ff9b::192.0.2.1', '64:ff9b:0:0::/64'],
    ['a scoped link-local address', 'fe80::1%eth0', 'fe80:0:0:0::/64'],
  ])('counts %s', (_label, ip, expected) => {
    expect(failureSubject(ip)).toBe(expected);
  });

  it('counts two addresses of one IPv6 /64 together', () => {
    expect(failureSubject('2001:db8:aa:bb::1')).toBe(failureSubject('2001:db8:aa:bb:ffff:1:2:3'));
    expect(failureSubject('2001:db8:aa:bb::1')).not.toBe(failureSubject('2001:db8:aa:bc::1'));
  });
});

describe('IPv4 clients written as IPv6', () => {
  const behind = (xff: string) =>
    ({
      headers: { 'x-forwarded-for': xff },
      socket: { remoteAddress: '10.0.0.1' },
    }) as unknown as IncomingMessage;
  it.each([
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:192.0.2.1', '192.0.2.1'],
    ['::ffff:c000:202', '192.0.2.2'],
    ['0:0:0:0:0:ffff:192.0.2.3', '192.0.2.3'],
  ])('%s is the IPv4 client %s, counted on its own', (written, ipv4) => {
    expect(clientIp(behind(written), true)).toBe(ipv4);
    expect(failureSubject(clientIp(behind(written), true))).toBe(ipv4);
  });

  it('leaves real IPv6 addresses, and :: itself, as IPv6', () => {
    expect(clientIp(behind('2001:db8::1'), true)).toBe('2001:db8::1');
    expect(clientIp(behind('::1'), true)).toBe('::1');
    expect(clientIp(behind('::'), true)).toBe('::');
  });
});
