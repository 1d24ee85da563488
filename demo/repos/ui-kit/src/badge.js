// Badges: short labels such as "New" or "Low stock", rendered as HTML strings.
import { escapeHtml } from './html.js';

/** Colours per tone. Add a tone here (and a test) to make it available everywhere. */
export const BADGE_TONES = {
  info: { background: '#e0ecff', color: '#1d4ed8' },
  warning: { background: '#fff4d6', color: '#92400e' },
};

/** Renders a badge, e.g. renderBadge('New', 'info') === '<span class="badge badge--info">New</span>'. */
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
