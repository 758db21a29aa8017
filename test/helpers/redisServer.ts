// A throwaway Redis for tests and benches: Debian's redis-server on 127.0.0.1 at a free port, in
// a temporary folder, without persistence (a restart loses every key, as a crashed Redis would).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export interface RedisServer {
  port: number;
  url: string;
  /** Stops the server (SIGTERM, waits for its exit). */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function startRedis(options: { password?: string; extraArgs?: string[] } = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'lopt-redis-'));
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', ...(options.extraArgs ?? [])];
  if (options.password !== undefined) args.push('--requirepass', options.password);
  const start = async (): Promise<void> => {
    proc = spawn('redis-server', args, { stdio: 'ignore' });
    const spawned = proc;
    await new Promise<void>((resolve, reject) => {
      spawned.once('error', (e) => reject(new Error(`cannot start redis-server (apt install redis-server): ${e.message}`)));
      spawned.once('spawn', () => resolve());
    });
    const client = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
      ...(options.password ? { password: options.password } : {}),
    });
    client.on('error', () => undefined); // refused until it listens: the loop retries
    for (let i = 0; ; i++) {
      try {
        await client.connect();
        await client.ping();
        client.disconnect();
        return;
      } catch (e) {
        client.disconnect();
        if (i > 100 || spawned.exitCode !== null) throw new Error(`redis-server did not come up on port ${port}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const stop = async (): Promise<void> => {
    const p = proc;
    proc = undefined;
    if (p === undefined || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
