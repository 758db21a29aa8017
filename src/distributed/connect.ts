// Connecting to Redis with a deadline and an error that says what went wrong: refused
// credentials at once, an unreachable server after `ms`. Messages name the URL without credentials.
import { Redis } from 'ioredis';
import type { QueueEndpoint } from './queueUrl.js';
import { printable } from '../text/printable.js';

export async function connectWithin(redis: Redis, ms: number, where: string): Promise<void> {
  let lastError = 'no answer';
  const onError = (e: Error) => (lastError = e.message);
  redis.on('error', onError);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`queue: cannot reach Redis at ${where} within ${ms / 1000} s (${printable(lastError, 160)})`)), ms);
      const refused = (e: Error) => {
        if (!/^(WRONGPASS|NOAUTH|NOPERM|ERR AUTH)/.test(e.message)) return;
        clearTimeout(timer);
        reject(new Error(`queue: Redis at ${where} refused the connection: ${printable(e.message, 160)}`));
      };
      redis.on('error', refused);
      redis
        .connect()
        .then(() => redis.ping())
        .then(
          () => {
            clearTimeout(timer);
            resolve();
          },
          (e: Error) => refused(e),
        )
        .finally(() => redis.off('error', refused));
    });
  } catch (e) {
    redis.disconnect();
    throw e;
  } finally {
    redis.off('error', onError);
  }
}

/** Connects once and lets go: the queue is reachable and takes the credentials, or a clear error. */
export async function probeQueue(endpoint: QueueEndpoint, seconds: number): Promise<void> {
  const redis = new Redis({ ...endpoint.connection, lazyConnect: true });
  await connectWithin(redis, seconds * 1000, endpoint.display);
  redis.disconnect();
}
