import { spawn } from 'node:child_process';
import { cpuSecondsOf, processTree, treeRss } from '../bench/support/proc-stats.js';
import { eventually } from './support/eventually.js';

// The peer bench sums a front's RSS with its children's and reads CPU from /proc: on this
// machine's real /proc, a child that starts a grandchild (as supergateway's shell does).
describe('bench /proc readers', () => {
  const grandchild = `require('node:child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }); setInterval(() => {}, 1000);`;

  it('counts a process, its child and its grandchild, and their CPU time', async () => {
    const child = spawn(process.execPath, ['-e', grandchild], { stdio: 'ignore' });
    try {
      const tree = await eventually(() => {
        const pids = processTree(child.pid!);
        return pids.length === 2 ? pids : undefined;
      }, 10_000);
      expect(tree[0]).toBe(child.pid);
      expect(processTree(process.pid)).toEqual(expect.arrayContaining(tree));

      const rss = treeRss(child.pid!);
      expect(rss.processes).toBe(2);
      // Two Node processes: tens of MiB each, far from zero and from the whole machine.
      expect(rss.bytes).toBeGreaterThan(2 * 10 * 2 ** 20);
      expect(rss.bytes).toBeLessThan(2 * 2 ** 30);

      expect(cpuSecondsOf(tree)).toBeGreaterThan(0);
      expect(cpuSecondsOf([...tree, 2 ** 22 + 1])).toBeNaN(); // a pid that cannot exist
    } finally {
      const [, grandchildPid] = processTree(child.pid!);
      if (grandchildPid) process.kill(grandchildPid, 'SIGKILL');
      child.kill('SIGKILL');
    }
  });
});
