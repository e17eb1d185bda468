import { descendantsOf, parseStat, parseVmRssBytes } from '../bench/support/proc-stats.js';

// The bench's peer figures (CPU per call of a front, RSS of a front and its children) rest on
// these readings of /proc; the readers themselves are exercised by bench-proc-stats.int-spec.ts.
describe('bench /proc readings', () => {
  // Fields after the name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
  // cmajflt utime stime …
  const tail = 'S 41 42 42 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 11 0 5000 1200000000 30000';

  it.each([
    ['a plain name', `42 (node) ${tail}`],
    ['a name with spaces', `42 (MainThread pool) ${tail}`],
    ['a name with parentheses', `42 (sh (x) y)) ${tail}`],
  ])('reads pid, parent and CPU seconds of a stat line with %s', (_, line) => {
    expect(parseStat(line)).toEqual({ pid: 42, ppid: 41, cpuSeconds: 3.25 });
  });

  it('refuses a line that is not a stat line', () => {
    expect(() => parseStat('garbage')).toThrow('not a /proc/<pid>/stat line');
  });

  it.each([
    [
      'a live process',
      'Name:\tnode\nVmPeak:\t 2000 kB\nVmRSS:\t  123456 kB\nRssAnon:\t1 kB\n',
      123456 * 1024,
    ],
    ['a zombie (no VmRSS line)', 'Name:\tnode\nState:\tZ (zombie)\n', undefined],
  ])('reads the resident size of %s', (_, status, bytes) => {
    expect(parseVmRssBytes(status)).toBe(bytes);
  });

  it('finds children and their children, not siblings or the parent', () => {
    const parents = new Map([
      [1, 0],
      [10, 1], // the front
      [11, 10], // a shell it spawned
      [12, 11], // the server under that shell
      [13, 10], // another child
      [20, 1], // a sibling of the front
      [21, 20],
    ]);
    expect(descendantsOf(10, parents).sort((a, b) => a - b)).toEqual([11, 12, 13]);
    expect(descendantsOf(13, parents)).toEqual([]);
  });
});
