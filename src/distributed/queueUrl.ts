// The `--queue redis://[user:password@]host:port[/db]` argument: validated before any work, turned
// into ioredis connection options, and shown only without its credentials.
import type { RedisOptions } from 'bullmq';
import { printable } from '../text/printable.js';

/** Environment variables read when the URL carries no credentials (never printed). */
export const QUEUE_PASSWORD_ENV = 'LOPT_REDIS_PASSWORD';
export const QUEUE_USERNAME_ENV = 'LOPT_REDIS_USERNAME';

export interface QueueEndpoint {
  /** What ioredis (through BullMQ) connects with. */
  connection: RedisOptions;
  /** The URL without user or password, for messages: `redis://host:port/db`. */
  display: string;
  tls: boolean;
}

const FORM = 'redis://[user:password@]host:port[/db] or rediss:// for TLS';

/**
 * Parses a queue URL. Credentials come from the URL or, when it has none, from
 * LOPT_REDIS_USERNAME / LOPT_REDIS_PASSWORD; they are never part of an error message.
 */
export function parseQueueUrl(text: string, env: NodeJS.ProcessEnv = process.env): QueueEndpoint {
  const bad = (why: string): Error => new Error(`--queue: ${why}; expected ${FORM}`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // The text itself may hold a password: say nothing of it but its scheme.
    throw bad(`'${printable(text.split('@').pop() ?? '', 60)}' is not a URL`);
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== 'redis' && scheme !== 'rediss') throw bad(`the scheme is '${printable(scheme, 20)}'`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw bad('no host');
  if (url.port === '') throw bad('no port (Redis listens on 6379 by default: say so)');
  const port = Number(url.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw bad(`port ${printable(url.port, 10)} is not in 1…65535`);
  if (url.search !== '' || url.hash !== '') throw bad('query strings and fragments are not accepted');
  const path = url.pathname.replace(/^\//, '');
  let db = 0;
  if (path !== '') {
    if (!/^\d{1,5}$/.test(path)) throw bad(`the database '${printable(path, 20)}' is not a number`);
    db = Number(path);
  }
  const username = url.username !== '' ? decodeURIComponent(url.username) : env[QUEUE_USERNAME_ENV];
  const password = url.password !== '' ? decodeURIComponent(url.password) : env[QUEUE_PASSWORD_ENV];
  const tls = scheme === 'rediss';
  const connection: RedisOptions = {
    host,
    port,
    db,
    // BullMQ's workers block on Redis: requests must wait for a reconnect, not fail after N tries.
    maxRetriesPerRequest: null,
    ...(username !== undefined && username !== '' ? { username } : {}),
    ...(password !== undefined && password !== '' ? { password } : {}),
    // TLS verifies the server against the system's CAs; a private CA goes in NODE_EXTRA_CA_CERTS.
    ...(tls ? { tls: {} } : {}),
  };
  return { connection, display: `${scheme}://${url.host}/${db}`, tls };
}
