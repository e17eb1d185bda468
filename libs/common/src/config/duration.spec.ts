import { parseDuration } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
  ])('parses %s', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '5', '5 m', '1.5s', '-1s', '0s', '10y', 'ms'])('rejects %j', (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );
});
