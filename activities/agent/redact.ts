// Secrets never reach a model prompt, a transcript, a check's output, a summary, a PR or a log line:
// known secret values are replaced in the forms a script can trivially produce (as they are, reversed,
// base64 and base64url at any alignment, hex, URL-encoded), and strings shaped like common tokens are
// masked even when the service did not know them.
const TOKEN_SHAPES = [
  /sk-ant-[A-Za-z0-9_-]{10,}/g, // Anthropic keys
  /\bgh[pousr]_[A-Za-z0-9]{20,}/g, // GitHub tokens
  /\bgithub_pat_[A-Za-z0-9_]{20,}/g,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, // Slack tokens
  /\b(Bearer|token)\s+[A-Za-z0-9._~+/=-]{20,}/gi,
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
];

export const REDACTED = '[REDACTED]';

/** Masks secrets in a text; `containsKnownSecret` says whether one of the service's own is in it, in any form. */
export type Redactor = ((text: string) => string) & { containsKnownSecret?: (text: string) => boolean };

/** Builds a redactor for the given secret values (empty and very short values are ignored). */
export function redactorFor(secrets: readonly (string | undefined)[]): Redactor {
  const forms = secretForms(secrets);
  const redact: Redactor = (text: string) => {
    let out = text;
    for (const form of forms) if (out.includes(form)) out = out.split(form).join(REDACTED);
    for (const shape of TOKEN_SHAPES) out = out.replace(shape, REDACTED);
    return out;
  };
  redact.containsKnownSecret = (text) => forms.some((form) => text.includes(form));
  return redact;
}

/** Every form of every secret worth looking for, longest first so a longer form is masked whole. */
function secretForms(secrets: readonly (string | undefined)[]): string[] {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.length < 8) continue;
    const bytes = Buffer.from(secret, 'utf8');
    forms.add(secret);
    forms.add([...secret].reverse().join(''));
    forms.add(encodeURIComponent(secret));
    forms.add(bytes.toString('hex'));
    forms.add(bytes.toString('hex').toUpperCase());
    for (const form of base64Cores(bytes)) forms.add(form);
  }
  // A form shorter than 8 characters would mask ordinary text.
  return [...forms].filter((f) => f.length >= 8).sort((a, b) => b.length - a.length);
}

/**
 * The secret's base64 (and base64url) wherever it starts in a longer encoded text: its bytes may begin at
 * any of three offsets in a 3-byte group, and only the characters that depend on the secret alone are kept.
 */
function base64Cores(bytes: Buffer): string[] {
  const cores: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
    const encoded = padded.toString('base64').replace(/=+$/, '');
    // Leading characters mix in the padding bytes; trailing ones mix in whatever follows.
    const start = Math.ceil((offset * 8) / 6);
    const end = Math.floor(((offset + bytes.length) * 8) / 6);
    const core = encoded.slice(start, end);
    cores.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return cores;
}
