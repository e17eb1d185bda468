import { type Delivery, readDelivery } from './ack-subject.js';

describe('readDelivery', () => {
  it.each([
    ['the short form', '$JS.ACK.MCP_EVENTS.analytics.1.4821.4800.1732406400000000000.17', 1, 4821],
    [
      'the short form of a prefixed deployment (events.nats_prefix)',
      '$JS.ACK.acme-prod_MCP_EVENTS.acme-prod_analytics.2.77.70.1732406400000000000.0',
      2,
      77,
    ],
    [
      'the long form with domain and account hash',
      '$JS.ACK.hub.ACCHASH.MCP_EVENTS.analytics.3.99.12.1732406400000000000.0',
      3,
      99,
    ],
    [
      'the long form with its trailing token',
      '$JS.ACK._.ACCHASH.MCP_EVENTS.analytics.2.123456789012.5.1732406400000000000.0.xyz',
      2,
      123456789012,
    ],
  ])('reads delivery count and stream sequence from %s', (_name, reply, count, seq) => {
    const into: Delivery = { deliveryCount: 0, streamSequence: 0 };
    expect(readDelivery(reply, into)).toBe(true);
    expect(into).toEqual({ deliveryCount: count, streamSequence: seq });
  });

  it.each([
    ['a reply that is no ack subject', '_INBOX.abc.def'],
    ['too few tokens', '$JS.ACK.S.c.1.2.3'],
    ['too many tokens', '$JS.ACK.a.b.c.d.1.2.3.4.5.6.7.8'],
    ['a sequence that is not a number', '$JS.ACK.S.c.1.x2.3.4.5'],
    ['an empty delivery count', '$JS.ACK.S.c..2.3.4.5'],
    ['a sequence of zero', '$JS.ACK.S.c.1.0.3.4.5'],
  ])('declines %s (the caller falls back to the client library)', (_name, reply) => {
    const into: Delivery = { deliveryCount: 7, streamSequence: 7 };
    expect(readDelivery(reply, into)).toBe(false);
    expect(into).toEqual({ deliveryCount: 7, streamSequence: 7 });
  });
});
