// Builds the static preview: dist/index.html from fixtures/products.json.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { renderPage } from './src/render.js';

const root = new URL('./', import.meta.url);
const { products } = JSON.parse(await readFile(new URL('fixtures/products.json', root), 'utf8'));
const html = renderPage(products);

await mkdir(new URL('dist/', root), { recursive: true });
await writeFile(new URL('dist/index.html', root), html);
console.log(`wrote dist/index.html (${products.length} products, ${html.length} bytes)`);
