// Acceptance for web-app (with the run's ui-kit installed): a discounted card shows the badge, others do not.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const { renderProductCard } = await import(pathToFileURL(path.join(process.cwd(), 'src/render.js')).href);

test('a product with a discount shows a sale badge with its percentage', () => {
  const html = renderProductCard({ id: 'p-1', name: 'Tote', priceCents: 1000, discountPercent: 20 });
  assert.match(html, /badge--sale/);
  assert.match(html, /20\s?%/);
});

test('a product without a discount shows none', () => {
  assert.doesNotMatch(renderProductCard({ id: 'p-2', name: 'Mug', priceCents: 900, discountPercent: 0 }), /badge--sale/);
});
