import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderBadge, badgeCss, BADGE_TONES } from '../src/index.js';

test('renderBadge renders a span with the tone class', () => {
  assert.equal(renderBadge('New', 'info'), '<span class="badge badge--info">New</span>');
  assert.equal(renderBadge('Low stock', 'warning'), '<span class="badge badge--warning">Low stock</span>');
});

test('renderBadge defaults to the info tone', () => {
  assert.equal(renderBadge('New'), '<span class="badge badge--info">New</span>');
});

test('renderBadge escapes HTML in the text', () => {
  assert.equal(
    renderBadge('<b>Tom & "Jerry"</b>', 'info'),
    '<span class="badge badge--info">&lt;b&gt;Tom &amp; &quot;Jerry&quot;&lt;/b&gt;</span>',
  );
});

test('renderBadge rejects unknown tones', () => {
  assert.throws(() => renderBadge('Hot', 'neon'), RangeError);
});

test('badgeCss has a rule for every tone', () => {
  const css = badgeCss();
  assert.match(css, /^\.badge\{/);
  for (const tone of Object.keys(BADGE_TONES)) {
    assert.ok(css.includes(`.badge--${tone}{`), `missing .badge--${tone}`);
  }
});
