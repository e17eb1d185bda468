import { WebSocket } from 'undici';
import { eventually, type Proc } from './processes.js';

/**
 * A CPU profile of a child process over a chosen window, through the V8 inspector: the child
 * runs with `--inspect=127.0.0.1:0`, the bench starts the profiler after the warm-up and stops it
 * after the measured run, so start-up and idle phases stay out of the profile (which
 * `--cpu-prof` would include: it records the whole life of the process).
 */
export class InspectorSession {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
      };
      if (message.id === undefined) return;
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error) waiter?.reject(new Error(message.error.message));
      else waiter?.resolve(message.result);
    });
  }

  /** Connects to the inspector a process announced on stderr ("Debugger listening on ws://…"). */
  static async attach(proc: Proc): Promise<InspectorSession> {
    const url = await eventually(
      () => /Debugger listening on (ws:\/\/\S+)/.exec(proc.output)?.[1],
      10_000,
      'inspector URL',
    );
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true });
      socket.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), {
        once: true,
      });
    });
    return new InspectorSession(socket);
  }

  post<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  async startProfiling(intervalUs = 250): Promise<void> {
    await this.post('Profiler.enable');
    await this.post('Profiler.setSamplingInterval', { interval: intervalUs });
    await this.post('Profiler.start');
  }

  /** Stops the profiler; returns the profile in .cpuprofile format. */
  async stopProfiling(): Promise<unknown> {
    const { profile } = await this.post<{ profile: unknown }>('Profiler.stop');
    return profile;
  }

  close(): void {
    this.socket.close();
  }
}
