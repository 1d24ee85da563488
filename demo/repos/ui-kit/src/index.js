// Public entry point of @acme/ui-kit.
export { formatPrice } from './price.js';
export { renderBadge, badgeCss, BADGE_TONES } from './badge.js';
export { escapeHtml } from './html.js';
