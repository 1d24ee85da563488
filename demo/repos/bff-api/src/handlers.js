// Request handlers as pure functions: no I/O, they return { status, body } for server.js to send.
import { products } from './data.js';

/** Copies a product so callers can never mutate the catalogue. */
function toPayload(product) {
  return { ...product };
}

/** GET /api/products */
export function listProducts() {
  return { status: 200, body: { products: products.map(toPayload) } };
}

/** GET /api/products/:id */
export function getProduct(id) {
  const product = products.find((p) => p.id === id);
  if (!product) return { status: 404, body: { error: `No product with id "${id}"` } };
  return { status: 200, body: { product: toPayload(product) } };
}
