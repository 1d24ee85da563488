// File tools over one repository checkout (editing) or over several read-only ones (proposing).
import { RE2JS } from 're2js';
import { z } from 'zod';
import { defineTool, ToolRefusal, type Tool } from './registry';
import type { RepoSandbox } from './sandbox';

const PathSchema = z.string().max(500).describe('Path relative to the repository root, e.g. "src/index.js"');
const MAX_SEARCH_MATCHES = 100;
const MAX_LINES_PER_READ = 800;

async function listFiles(sandbox: RepoSandbox, dir: string | undefined): Promise<string> {
  const { files, truncated } = await sandbox.listFiles(dir ?? '.');
  if (files.length === 0) return '(no files)';
  return files.join('\n') + (truncated ? '\n[more files not shown; list a subfolder]' : '');
}

async function readFile(sandbox: RepoSandbox, file: string, fromLine?: number, toLine?: number): Promise<string> {
  const lines = (await sandbox.readText(file)).split('\n');
  const first = Math.max(1, fromLine ?? 1);
  const last = Math.min(lines.length, toLine ?? first + MAX_LINES_PER_READ - 1, first + MAX_LINES_PER_READ - 1);
  const body = lines.slice(first - 1, last).map((line, i) => `${String(first + i).padStart(5)}  ${line}`).join('\n');
  const more = last < lines.length ? `\n[lines ${last + 1}-${lines.length} not shown; read them with fromLine]` : '';
  return `${file} (lines ${first}-${last} of ${lines.length})\n${body}${more}`;
}

/**
 * A pattern the agent wrote, matched in linear time (RE2 semantics, via re2js): a pattern like `(a+)+$`
 * cannot stall the worker's event loop. One RE2 does not know (lookarounds, backreferences) is searched
 * for as plain text.
 */
function lineMatcher(pattern: string): { test(line: string): boolean } {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(pattern, RE2JS.CASE_INSENSITIVE);
  } catch {
    compiled = RE2JS.compile(RE2JS.quote(pattern), RE2JS.CASE_INSENSITIVE);
  }
  return { test: (line) => compiled.matcher(line).find() };
}

async function searchFiles(sandbox: RepoSandbox, pattern: string, dir: string | undefined): Promise<string> {
  const matcher = lineMatcher(pattern);
  const { files } = await sandbox.listFiles(dir ?? '.');
  const matches: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await sandbox.readText(file);
    } catch {
      continue; // binary, too large or a link outside: not searchable, and not worth an error
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length && matches.length < MAX_SEARCH_MATCHES; i++) {
      if (matcher.test(lines[i]!)) matches.push(`${file}:${i + 1}: ${lines[i]!.trim().slice(0, 200)}`);
    }
    if (matches.length >= MAX_SEARCH_MATCHES) break;
  }
  if (matches.length === 0) return `No matches for /${pattern}/i.`;
  return matches.join('\n') + (matches.length >= MAX_SEARCH_MATCHES ? '\n[more matches not shown; narrow the pattern]' : '');
}

/** Tools for editing one repository. */
export function editingTools(sandbox: RepoSandbox): Tool<any, any>[] {
  return [
    defineTool({
      name: 'list_files',
      description: 'List the files of the repository, or of one folder in it.',
      input: z.object({ path: PathSchema.optional() }),
      run: async ({ path }) => ({ text: await listFiles(sandbox, path) }),
    }),
    defineTool({
      name: 'read_file',
      description: 'Read a text file, with line numbers. Long files are shown in parts.',
      input: z.object({
        path: PathSchema,
        fromLine: z.number().int().min(1).optional(),
        toLine: z.number().int().min(1).optional(),
      }),
      run: async ({ path, fromLine, toLine }) => ({ text: await readFile(sandbox, path, fromLine, toLine) }),
    }),
    defineTool({
      name: 'search',
      description: 'Search file contents with a case-insensitive regular expression; answers file:line: text.',
      input: z.object({ pattern: z.string().min(1).max(300), path: PathSchema.optional() }),
      run: async ({ pattern, path }) => ({ text: await searchFiles(sandbox, pattern, path) }),
    }),
    defineTool({
      name: 'write_file',
      description: 'Create a file or replace its whole content.',
      input: z.object({ path: PathSchema, content: z.string() }),
      run: async ({ path, content }) => ({ text: `${await sandbox.writeText(path, content)} ${path}` }),
    }),
    defineTool({
      name: 'replace_in_file',
      description: 'Replace one exact occurrence of `old` with `new` in a file. `old` must appear exactly once.',
      input: z.object({ path: PathSchema, old: z.string().min(1), new: z.string() }),
      run: async ({ path, old, new: replacement }) => {
        const text = await sandbox.readText(path);
        const count = text.split(old).length - 1;
        if (count === 0) throw new ToolRefusal(`The text to replace was not found in ${path}. Read the file and copy the text exactly.`);
        if (count > 1) throw new ToolRefusal(`The text to replace appears ${count} times in ${path}; include more surrounding lines so it is unique.`);
        await sandbox.writeText(path, text.replace(old, () => replacement));
        return { text: `updated ${path}` };
      },
    }),
    defineTool({
      name: 'delete_file',
      description: 'Delete a file.',
      input: z.object({ path: PathSchema }),
      run: async ({ path }) => {
        await sandbox.remove(path);
        return { text: `deleted ${path}` };
      },
    }),
  ];
}

/** Read-only tools across the repositories in scope, for proposing which of them a change touches. */
export function exploringTools(openRepo: (id: string) => Promise<RepoSandbox>, repoIds: readonly string[]): Tool<any, any>[] {
  const RepoSchema = z.enum(repoIds as [string, ...string[]]).describe('Repository id from the catalog');
  return [
    defineTool({
      name: 'list_files',
      description: 'List the files of a repository from the catalog, or of one folder in it.',
      input: z.object({ repo: RepoSchema, path: PathSchema.optional() }),
      run: async ({ repo, path }) => ({ text: await listFiles(await openRepo(repo), path) }),
    }),
    defineTool({
      name: 'read_file',
      description: 'Read a text file (README, package.json, source) of a repository from the catalog.',
      input: z.object({ repo: RepoSchema, path: PathSchema, fromLine: z.number().int().min(1).optional(), toLine: z.number().int().min(1).optional() }),
      run: async ({ repo, path, fromLine, toLine }) => ({ text: await readFile(await openRepo(repo), path, fromLine, toLine) }),
    }),
    defineTool({
      name: 'search',
      description: 'Search a repository from the catalog with a case-insensitive regular expression.',
      input: z.object({ repo: RepoSchema, pattern: z.string().min(1).max(300), path: PathSchema.optional() }),
      run: async ({ repo, pattern, path }) => ({ text: await searchFiles(await openRepo(repo), pattern, path) }),
    }),
  ];
}
