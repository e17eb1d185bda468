/**
 * Delivery count and stream sequence of a JetStream message, read from its reply (ack) subject
 * without the string splitting of `JsMsg.info`: that parse of all eleven tokens into a fresh
 * object cost ~1.3 µs per event, a tenth of the ingest's main thread at 50,000 events/s.
 *
 * The two forms (ADR-15), tokens counted from 0:
 *   $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
 *   $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]
 */
export interface Delivery {
  deliveryCount: number;
  streamSequence: number;
}

const MAX_TOKENS = 12;
const dots = new Int32Array(MAX_TOKENS);

/** Fills `into` and returns true, or returns false for a subject of another shape. */
export function readDelivery(reply: string, into: Delivery): boolean {
  if (!reply.startsWith('$JS.ACK.')) return false;
  let count = 0;
  for (let at = reply.indexOf('.'); at !== -1; at = reply.indexOf('.', at + 1)) {
    if (count === MAX_TOKENS) return false;
    dots[count++] = at;
  }
  // count dots = tokens - 1
  let delivered: number;
  if (count === 8) delivered = 4;
  else if (count === 10 || count === 11) delivered = 6;
  else return false;
  const deliveryCount = digits(reply, dots[delivered - 1] + 1, dots[delivered]);
  const streamSequence = digits(reply, dots[delivered] + 1, dots[delivered + 1]);
  if (deliveryCount < 1 || streamSequence < 1) return false;
  into.deliveryCount = deliveryCount;
  into.streamSequence = streamSequence;
  return true;
}

/** The decimal number in text[from, to), or -1 when it is empty, not digits or not exact. */
function digits(text: string, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}
