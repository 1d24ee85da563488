// Acceptance for ui-kit (run in a checkout of the run's branch): a discount badge exists and looks like one.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

const kit = await import(pathToFileURL(path.join(process.cwd(), 'src/index.js')).href);

test('the kit has a sale tone', () => {
  assert.ok(kit.BADGE_TONES.sale, 'BADGE_TONES.sale');
});

test('a discount badge names the percentage in the sale tone', () => {
  const html = typeof kit.saleBadge === 'function' ? kit.saleBadge(20) : kit.renderBadge('Sale −20%', 'sale');
  assert.match(html, /badge--sale/);
  assert.match(html, /20\s?%/);
});
