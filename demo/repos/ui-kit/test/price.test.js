import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPrice } from '../src/index.js';

test('formatPrice formats cents as dollars', () => {
  assert.equal(formatPrice(1250), '$12.50');
  assert.equal(formatPrice(99), '$0.99');
  assert.equal(formatPrice(0), '$0.00');
});

test('formatPrice pads single-digit cents', () => {
  assert.equal(formatPrice(1205), '$12.05');
  assert.equal(formatPrice(7), '$0.07');
});

test('formatPrice groups thousands', () => {
  assert.equal(formatPrice(123456), '$1,234.56');
  assert.equal(formatPrice(100000000), '$1,000,000.00');
});

test('formatPrice puts the minus sign first for refunds', () => {
  assert.equal(formatPrice(-1250), '-$12.50');
});

test('formatPrice rejects amounts that are not integer cents', () => {
  assert.throws(() => formatPrice(12.5), TypeError);
  assert.throws(() => formatPrice('1250'), TypeError);
});
