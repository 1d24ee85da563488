// Vendored copy of the @acme/ui-kit helpers this app uses (see README: the real app imports
// @acme/ui-kit; the copy keeps this demo install-free). Keep it in step with ui-kit.

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for use in HTML text content and in quoted attribute values. */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (char) => ESCAPES[char]);
}

/** Formats integer cents for display, e.g. formatPrice(1250) === "$12.50". */
export function formatPrice(cents) {
  if (!Number.isInteger(cents)) {
    throw new TypeError(`formatPrice expects integer cents, got ${cents}`);
  }
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  const whole = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const fraction = String(abs % 100).padStart(2, '0');
  return `${sign}$${whole}.${fraction}`;
}

/** Colours per badge tone. */
export const BADGE_TONES = {
  info: { background: '#e0ecff', color: '#1d4ed8' },
  warning: { background: '#fff4d6', color: '#92400e' },
};

/** Renders a badge as an HTML string, e.g. <span class="badge badge--info">New</span>. */
export function renderBadge(text, tone = 'info') {
  if (!Object.hasOwn(BADGE_TONES, tone)) {
    throw new RangeError(`Unknown badge tone "${tone}"; use one of: ${Object.keys(BADGE_TONES).join(', ')}`);
  }
  return `<span class="badge badge--${tone}">${escapeHtml(text)}</span>`;
}

/** CSS for .badge and every tone, to inline once per page. */
export function badgeCss() {
  const base =
    '.badge{display:inline-block;padding:2px 8px;border-radius:999px;' +
    'font-size:12px;font-weight:600;line-height:18px;white-space:nowrap}';
  const tones = Object.entries(BADGE_TONES).map(
    ([tone, { background, color }]) => `.badge--${tone}{background:${background};color:${color}}`,
  );
  return [base, ...tones].join('\n');
}
