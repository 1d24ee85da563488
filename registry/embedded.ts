// The embedded npm registry: a real Verdaccio in this process, so in-flight packages of a run are published
// and installed exactly as they would be against the team's registry. Everything it keeps (configuration,
// storage, the service user's credentials) lives under one folder, so a restart on that folder carries on.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { listenOn } from '../activities/listen';
import YAML from 'yaml';

export interface EmbeddedRegistry {
  /** e.g. http://127.0.0.1:8745/ (with the trailing slash npm expects of a registry URL). */
  url: string;
  /** The service user's token: may publish. Never expires; it stays valid across restarts on the same folder. */
  token: string;
  close(): Promise<void>;
}

export interface EmbeddedRegistryOptions {
  /** Holds config.yaml, storage/, htpasswd and the service user's credentials. */
  dir: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Loopback only (default 127.0.0.1): the registry takes anonymous reads. */
  host?: string;
  /** A registry to proxy (and cache) packages not published here, e.g. https://registry.npmjs.org/; default none. */
  uplink?: string | null;
}

const SERVICE_USER = 'change-requests';
const CREDENTIALS_FILE = 'service-user.json';

interface Credentials {
  name: string;
  password: string;
}

export async function startEmbeddedRegistry(options: EmbeddedRegistryOptions): Promise<EmbeddedRegistry> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new Error(`the embedded registry listens on loopback only (127.0.0.1, ::1 or localhost), not on ${host}`);
  const dir = path.resolve(options.dir);
  // Storage holds the secret that signs tokens (.verdaccio-db.json): for this user only.
  await fs.mkdir(path.join(dir, 'storage'), { recursive: true, mode: 0o700 });
  await fs.chmod(path.join(dir, 'storage'), 0o700);
  const credentials = await serviceUser(dir);
  const configPath = path.join(dir, 'config.yaml');
  await fs.writeFile(configPath, YAML.stringify(configuration(dir, options.uplink ?? null)), { mode: 0o600 });

  // Loaded here, not at the top: Verdaccio takes a second or more to load, paid only by who starts one.
  const { runServer } = await import('verdaccio');
  const server: http.Server = await runServer(configPath);
  const { port } = await listenOn(server, options.port ?? 0, host);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  const close = () =>
    new Promise<void>((resolve, reject) => {
      server.close((error) => (error ? reject(error) : resolve()));
      // npm keeps connections alive; without this close() would wait for them to time out.
      server.closeAllConnections();
    });
  try {
    return { url, token: await logIn(url, credentials), close };
  } catch (error) {
    await close();
    throw error;
  }
}

function configuration(dir: string, uplink: string | null): Record<string, unknown> {
  const access = () => ({ access: '$all', publish: '$authenticated', unpublish: '$authenticated', ...(uplink ? { proxy: 'upstream' } : {}) });
  return {
    storage: path.join(dir, 'storage'),
    // Nobody registers: the only account is the service user, written to htpasswd by this module.
    auth: { htpasswd: { file: path.join(dir, 'htpasswd'), max_users: -1 } },
    uplinks: uplink ? { upstream: { url: uplink, cache: true } } : {},
    packages: { '@*/*': access(), '**': access() },
    // JWT api tokens are checked by signature alone (legacy tokens re-hash the password on every request).
    // No expiry: the token lives in the service's memory only, and each start logs in for a fresh one.
    security: { api: { jwt: { sign: {} } } },
    // A registry for machines: no web UI, and no audit endpoint forwarding to npmjs.org.
    web: { enabled: false },
    middlewares: { audit: { enabled: false } },
    // Offline (or with a dead uplink) a package is still publishable.
    publish: { allow_offline: true },
    max_body_size: '200mb',
    log: { type: 'stdout', format: 'json', level: 'error' },
  };
}

/** The service user's credentials: made once (password random, file 0600, hash in htpasswd), then reused. */
async function serviceUser(dir: string): Promise<Credentials> {
  const file = path.join(dir, CREDENTIALS_FILE);
  const htpasswd = path.join(dir, 'htpasswd');
  const saved = await fs.readFile(file, 'utf8').then((text) => JSON.parse(text) as Credentials, () => null);
  const credentials = saved ?? { name: SERVICE_USER, password: randomBytes(32).toString('hex') };
  if (!saved) await fs.writeFile(file, `${JSON.stringify(credentials)}\n`, { mode: 0o600 });
  await fs.chmod(file, 0o600);
  const existing = await fs.readFile(htpasswd, 'utf8').catch(() => '');
  if (!existing.split('\n').some((line) => line.startsWith(`${credentials.name}:`))) {
    // Apache's {SHA} form, which verdaccio-htpasswd reads: a slow salted hash protects guessable passwords,
    // and this one is 256 random bits.
    const hash = createHash('sha1').update(credentials.password, 'utf8').digest('base64');
    await fs.writeFile(htpasswd, `${credentials.name}:{SHA}${hash}:service user of the change-request service\n`, { mode: 0o600 });
  }
  return credentials;
}

/** npm's own login exchange (CouchDB user document, with Basic auth because the user exists). */
async function logIn(url: string, credentials: Credentials): Promise<string> {
  const response = await fetch(new URL(`-/user/org.couchdb.user:${encodeURIComponent(credentials.name)}`, url), {
    method: 'PUT',
    headers: {
      'content-type': 'application/json',
      authorization: `Basic ${Buffer.from(`${credentials.name}:${credentials.password}`).toString('base64')}`,
    },
    body: JSON.stringify({ _id: `org.couchdb.user:${credentials.name}`, name: credentials.name, password: credentials.password, type: 'user', roles: [] }),
  });
  const body = (await response.json().catch(() => ({}))) as { token?: string; error?: string };
  if (response.status !== 201 || !body.token) throw new Error(`the embedded registry refused the service user's login: HTTP ${response.status} ${body.error ?? ''}`.trim());
  return body.token;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
