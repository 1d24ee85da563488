// Renders the product list page. Pure functions: products in, HTML string out.
import { badgeCss, escapeHtml, formatPrice, renderBadge } from '@acme/ui-kit';
import { PAGE_CSS } from './styles.js';

/** Up to two initials for the placeholder image, e.g. "Canvas Tote Bag" -> "CT". */
export function initials(name) {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((word) => word[0].toUpperCase())
    .join('');
}

/** A stable hue (0-359) per product, so each placeholder image gets its own colour. */
export function hueFor(id) {
  let hash = 0;
  for (const char of String(id)) hash = (hash * 31 + char.charCodeAt(0)) % 360;
  return (hash * 137) % 360; // 137° steps spread similar ids around the colour wheel
}

/** Badges shown above the product name, as HTML (none yet: add a product's badges here). */
export function renderProductBadges(product) {
  const badges = [];
  return badges.join('');
}

/** One product card. */
export function renderProductCard(product) {
  return [
    `<li class="card" data-product-id="${escapeHtml(product.id)}">`,
    `  <div class="card__media" style="--hue:${hueFor(product.id)}" aria-hidden="true">${escapeHtml(initials(product.name))}</div>`,
    `  <div class="card__badges">${renderProductBadges(product)}</div>`,
    `  <h3 class="card__name">${escapeHtml(product.name)}</h3>`,
    `  <p class="card__price">${formatPrice(product.priceCents)}</p>`,
    `  <button class="card__button" type="button">Add to cart</button>`,
    `</li>`,
  ].join('\n');
}

/** The grid of product cards. */
export function renderProductList(products) {
  if (products.length === 0) return '<p class="empty">No products yet. Check back soon.</p>';
  return `<ul class="grid">\n${products.map(renderProductCard).join('\n')}\n</ul>`;
}

/** The complete product list page; `source` says where the products came from (shown in the footer). */
export function renderPage(products, { title = 'Acme Shop', source = null } = {}) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${PAGE_CSS}
${badgeCss()}
</style>
</head>
<body>
<header class="header">
  <h1 class="header__title">Acme <span>Shop</span></h1>
  ${renderBadge('Free shipping on orders over $50', 'info')}
</header>
<main>
  <h2 class="page-title">All products</h2>
  ${renderProductList(products)}
</main>
<footer>Acme Shop demo storefront${source ? ` · products from ${escapeHtml(source)}` : ''}</footer>
</body>
</html>
`;
}
