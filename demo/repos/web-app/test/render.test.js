import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hueFor, initials, renderPage, renderProductCard, renderProductList } from '../src/render.js';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/products.json', import.meta.url), 'utf8'));
const tote = { id: 'p-100', name: 'Canvas Tote Bag', priceCents: 1250 };

test('renderProductCard shows the name and the formatted price', () => {
  const html = renderProductCard(tote);
  assert.ok(html.includes('data-product-id="p-100"'));
  assert.ok(html.includes('<h3 class="card__name">Canvas Tote Bag</h3>'));
  assert.ok(html.includes('<p class="card__price">$12.50</p>'));
});

test('renderProductCard escapes product names', () => {
  const html = renderProductCard({ id: 'x', name: 'Salt & <Pepper>', priceCents: 500 });
  assert.ok(html.includes('Salt &amp; &lt;Pepper&gt;'));
  assert.ok(!html.includes('<Pepper>'));
});

test('initials takes the first letters of the first two words', () => {
  assert.equal(initials('Canvas Tote Bag'), 'CT');
  assert.equal(initials('mug'), 'M');
});

test('hueFor gives each product a stable hue', () => {
  assert.equal(hueFor('p-100'), hueFor('p-100'));
  assert.ok(hueFor('p-100') >= 0 && hueFor('p-100') < 360);
  assert.notEqual(hueFor('p-100'), hueFor('p-101'));
});

test('renderProductList renders one card per product, or an empty state', () => {
  const html = renderProductList(fixture.products);
  assert.equal(html.match(/<li class="card"/g).length, fixture.products.length);
  assert.match(renderProductList([]), /No products yet/);
});

test('renderPage is a complete page with the Acme Shop header', () => {
  const html = renderPage(fixture.products);
  assert.match(html, /^<!doctype html>/);
  assert.match(html, /<title>Acme Shop<\/title>/);
  assert.ok(html.includes('.badge--info{'));
  assert.ok(html.includes('</html>'));
});
