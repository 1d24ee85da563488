// Reading a chat platform's settings from the environment: small checks with messages a person can act on.

/** A port setting (0 picks a free one); `fallback` when unset. */
export function portFrom(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`Configuration error: ${name} must be a port number (0–65535), not "${value}"`);
  return port;
}
