// Acceptance for bff-api: products carry a discount the apps can show.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const { listProducts } = await import(pathToFileURL(path.join(process.cwd(), 'src/handlers.js')).href);

test('every product has a whole discountPercent from 0 to 99, and some are on sale', () => {
  const products = listProducts().body.products;
  for (const p of products) {
    assert.ok(Number.isInteger(p.discountPercent) && p.discountPercent >= 0 && p.discountPercent <= 99, `${p.id}: ${p.discountPercent}`);
  }
  assert.ok(products.some((p) => p.discountPercent > 0), 'at least one product is discounted');
});
