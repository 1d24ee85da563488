// Acceptance for web-app (with the run's ui-kit installed): product cards show "USD 12.50".
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const { renderProductCard } = await import(pathToFileURL(path.join(process.cwd(), 'src/render.js')).href);

test('a card shows the price with its currency code', () => {
  assert.match(renderProductCard({ id: 'p-1', name: 'Tote', priceCents: 1250 }), /USD 12\.50/);
});
