// A fetched page made into text a model can read and a quote can be checked against: HTML through
// Readability (the main content, without navigation, scripts and footers, on linkedom's DOM) and turndown
// (to Markdown); Markdown, text, JSON and YAML as they are. Links are collected before cleaning, so the
// agent can open a page that the main content only points at.
import { Readability } from '@mozilla/readability';
import { parseHTML } from 'linkedom';
import TurndownService from 'turndown';
import type { FetchedPage } from './fetch-page';

export interface CleanPage {
  title: string;
  text: string;
  links: string[];
}

const MAX_LINKS = 50;

export function cleanPage(page: FetchedPage): CleanPage {
  if (page.kind !== 'html') return { title: page.title ?? titleOfText(page), text: page.body.trim(), links: linksOfText(page.body, page.finalUrl) };
  const { document } = parseHTML(page.body);
  const links = unique(
    [...document.querySelectorAll('a[href]')].flatMap((a) => absolute((a as unknown as { getAttribute(n: string): string | null }).getAttribute('href') ?? '', page.finalUrl)),
  );
  const fallbackTitle = document.querySelector('title')?.textContent?.trim() || page.finalUrl;
  const article = new Readability(document as unknown as ConstructorParameters<typeof Readability>[0]).parse();
  const markdown = article?.content ? toMarkdown(article.content) : (document.body?.textContent ?? '').trim();
  return { title: page.title ?? (article?.title?.trim() || fallbackTitle), text: markdown, links };
}

function toMarkdown(html: string): string {
  const turndown = new TurndownService({ headingStyle: 'atx', codeBlockStyle: 'fenced', bulletListMarker: '-' });
  return turndown.turndown(html).replace(/\n{3,}/g, '\n\n').trim();
}

function titleOfText(page: FetchedPage): string {
  const heading = page.kind === 'markdown' ? /^#\s+(.+)$/m.exec(page.body)?.[1] : undefined;
  return heading?.trim() || page.finalUrl;
}

/** Absolute links and Markdown links (resolved against the page) in a text. */
function linksOfText(text: string, base: string): string[] {
  const markdownTargets = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
  const bare = text.match(/\bhttps?:\/\/[^\s<>"'`()[\]{}]+/gi) ?? [];
  return unique([...markdownTargets, ...bare.map((l) => l.replace(/[.,;:!?]+$/, ''))].flatMap((href) => absolute(href, base)));
}

function absolute(href: string, base: string): string[] {
  try {
    const url = new URL(href, base);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return [];
    url.hash = '';
    return [url.toString()];
  } catch {
    return [];
  }
}

function unique(links: string[]): string[] {
  return [...new Set(links)].slice(0, MAX_LINKS);
}
