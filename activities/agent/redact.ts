// Secrets never reach a model prompt, a transcript or a log line: known secret values are replaced, and
// strings shaped like common tokens are masked even when the service did not know them.
const TOKEN_SHAPES = [
  /sk-ant-[A-Za-z0-9_-]{10,}/g, // Anthropic keys
  /\bgh[pousr]_[A-Za-z0-9]{20,}/g, // GitHub tokens
  /\bgithub_pat_[A-Za-z0-9_]{20,}/g,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, // Slack tokens
  /\b(Bearer|token)\s+[A-Za-z0-9._~+/=-]{20,}/gi,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
];

export type Redactor = (text: string) => string;

/** Builds a redactor for the given secret values (empty and very short values are ignored). */
export function redactorFor(secrets: readonly (string | undefined)[]): Redactor {
  const known = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 8).sort((a, b) => b.length - a.length);
  return (text: string) => {
    let out = text;
    for (const secret of known) out = out.split(secret).join('[REDACTED]');
    for (const shape of TOKEN_SHAPES) out = out.replace(shape, '[REDACTED]');
    return out;
  };
}
