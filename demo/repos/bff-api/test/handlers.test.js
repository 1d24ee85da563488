import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getProduct, listProducts } from '../src/handlers.js';

test('listProducts answers 200 with every product', () => {
  const { status, body } = listProducts();
  assert.equal(status, 200);
  assert.ok(body.products.length >= 3);
  for (const product of body.products) {
    assert.equal(typeof product.id, 'string');
    assert.equal(typeof product.name, 'string');
    assert.ok(Number.isInteger(product.priceCents), `${product.id} has integer priceCents`);
  }
});

test('getProduct answers 200 with the product', () => {
  const { status, body } = getProduct('p-100');
  assert.equal(status, 200);
  assert.deepEqual(body.product, { id: 'p-100', name: 'Canvas Tote Bag', priceCents: 1250 });
});

test('getProduct answers 404 for an unknown id', () => {
  const { status, body } = getProduct('nope');
  assert.equal(status, 404);
  assert.match(body.error, /nope/);
});

test('handlers return copies, not the catalogue itself', () => {
  listProducts().body.products[0].name = 'changed';
  assert.equal(getProduct('p-100').body.product.name, 'Canvas Tote Bag');
});
