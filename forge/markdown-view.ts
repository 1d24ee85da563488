// A pull request body as GitHub shows it: Markdown rendered by markdown-it, then sanitized by sanitize-html
// to the tags and attributes GitHub allows in comments (details/summary for collapsed sections included),
// so whatever a body holds, no script, style or event handler reaches the page.
import MarkdownIt from 'markdown-it';
import sanitizeHtml from 'sanitize-html';

const markdown = new MarkdownIt({ html: true, linkify: true });

const ALLOWED: sanitizeHtml.IOptions = {
  allowedTags: [...sanitizeHtml.defaults.allowedTags, 'details', 'summary', 'img', 'input', 'del', 'ins', 'sup', 'sub'],
  allowedAttributes: {
    a: ['href', 'title', 'rel'],
    img: ['src', 'alt', 'title', 'width', 'height'],
    code: ['class'],
    details: ['open'],
    th: ['align'],
    td: ['align'],
    input: ['type', 'checked', 'disabled'],
  },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedClasses: { code: [/^language-[\w-]+$/] },
  transformTags: { a: sanitizeHtml.simpleTransform('a', { rel: 'noopener noreferrer nofollow' }) },
};

export function renderMarkdownHtml(text: string): string {
  return sanitizeHtml(markdown.render(text), ALLOWED);
}
