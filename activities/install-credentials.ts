// Registry tokens for installs only: the catalog names the worker's environment variables that hold them
// (installCredentials), and each install command gets them in an .npmrc written for it, outside the
// checkout, and removed when it ends. Checks, previews, the agent's tools and prompts never see them, and
// the install's own output is masked with them like every other secret.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { InstallCredential } from '../domain/catalog-schema';
import { redactorFor, type Redactor } from './agent/redact';
import { hostPatternOf, isLoopbackUrl } from './egress-proxy';
import type { Confinement } from './sandbox';

export interface InstallCredentialFile {
  /** Environment for the install command (npm_config_userconfig pointing at the .npmrc). */
  env: Record<string, string>;
  /** What the install may reach for them: the .npmrc's folder, and the registries (relayed or proxied). */
  confinement: Required<Pick<Confinement, 'readable' | 'allowHosts' | 'loopbackPorts'>>;
  /** Masks the tokens in the install's output. */
  mask: Redactor;
}

export class MissingInstallCredential extends Error {
  override readonly name = 'MissingInstallCredential';
}

/** The .npmrc lines for the credentials: the token per registry, and the scope's registry where one is named. */
export function npmrcFor(credentials: readonly InstallCredential[], secrets: NodeJS.ProcessEnv): string {
  const lines: string[] = [];
  for (const credential of credentials) {
    const token = secrets[credential.tokenEnv];
    if (!token) throw new MissingInstallCredential(`the install needs ${credential.tokenEnv} for ${credential.registry}, and the worker's environment does not set it`);
    const registry = credential.registry.endsWith('/') ? credential.registry : `${credential.registry}/`;
    const { host, pathname } = new URL(registry);
    lines.push(`//${host}${pathname}:_authToken=${token}`);
    if (credential.scope) lines.push(`${credential.scope}:registry=${registry}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Runs `install` with the credentials' .npmrc in place (nothing at all when there are none), then removes it. */
export async function withInstallCredentials<T>(credentials: readonly InstallCredential[], secrets: NodeJS.ProcessEnv, install: (file: InstallCredentialFile) => Promise<T>): Promise<T> {
  if (credentials.length === 0) return install({ env: {}, confinement: { readable: [], allowHosts: [], loopbackPorts: [] }, mask: (text) => text });
  const content = npmrcFor(credentials, secrets);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-install-credentials-'));
  try {
    const file = path.join(dir, 'npmrc');
    await fs.writeFile(file, content, { mode: 0o600 });
    const registries = credentials.map((c) => new URL(c.registry));
    const confinement = {
      readable: [dir],
      allowHosts: registries.filter((url) => !isLoopbackUrl(url)).map(hostPatternOf),
      loopbackPorts: registries.filter(isLoopbackUrl).map((url) => Number(url.port || 80)),
    };
    return await install({ env: { npm_config_userconfig: file }, confinement, mask: redactorFor(credentials.map((c) => secrets[c.tokenEnv])) });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
