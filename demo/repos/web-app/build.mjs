// Builds the static preview: dist/index.html with the product list from the API when API_URL is set (in a
// change-set preview, bff-api's preview of the same change), otherwise from fixtures/products.json.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { renderPage } from './src/render.js';

const root = new URL('./', import.meta.url);
const apiUrl = process.env.API_URL;

async function loadProducts() {
  if (!apiUrl) return { products: JSON.parse(await readFile(new URL('fixtures/products.json', root), 'utf8')).products, source: 'fixtures/products.json' };
  const url = new URL('api/products', apiUrl.endsWith('/') ? apiUrl : `${apiUrl}/`);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return { products: (await response.json()).products, source: url.href };
}

const { products, source } = await loadProducts();
const html = renderPage(products, { source });

await mkdir(new URL('dist/', root), { recursive: true });
await writeFile(new URL('dist/index.html', root), html);
console.log(`wrote dist/index.html (${products.length} products from ${source}, ${html.length} bytes)`);
