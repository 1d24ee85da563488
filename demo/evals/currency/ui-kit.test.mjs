// Acceptance for ui-kit: prices read "USD 12.50".
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const { formatPrice } = await import(pathToFileURL(path.join(process.cwd(), 'src/index.js')).href);

test('formatPrice puts the currency code before the amount', () => {
  assert.equal(formatPrice(1250), 'USD 12.50');
  assert.equal(formatPrice(123456), 'USD 1,234.56');
});
