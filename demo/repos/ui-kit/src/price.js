// Price formatting. Amounts travel through Acme systems as integer cents.

/**
 * Formats an amount of cents for display, e.g. formatPrice(1250) === "$12.50".
 * Thousands are grouped with commas; negative amounts (refunds) get a leading minus.
 */
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
