// Context intake on real parts: links read over real HTTP (allow-list, SSRF guard, size and time limits,
// redirects), cleaned and stored by hash, and a demo requirement that is only a link to a PRD whose
// acceptance criteria sit on a second page, played through the real workflow to a brief that code checked.
import { promises as fs } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { briefProblems, linksIn, RequirementBriefSchema } from '../domain/brief';
import { cardFor } from '../domain/card';
import { renderSummaryMarkdown } from '../domain/summary';
import { fetchPage, UnreadableLinkError } from '../activities/context/fetch-page';
import { readSource } from '../activities/context/read-source';
import { SourceStore, sha256 } from '../activities/context/source-store';
import { demoRequirementText, type Scenario } from '../activities/agent/scenarios';
import { ScriptedModelProvider } from '../activities/agent/scripted-model';
import type { AgentTask, ModelProvider } from '../activities/agent/model';
import { recordHistory } from './helpers/histories';
import { startWebChat, type WebChat } from '../im-adapters/web/server';
import { ConversationRouter } from '../im-adapters/core/router';
import { loadCatalog } from '../domain/catalog-loader';
import { importApiSpec, operationShape } from '../activities/context/openapi';
import { createWorld, demoScenarios, waitForPhase, waitForState, type World } from './helpers/world';

jest.setTimeout(240_000);

// ---- a local site with every kind of answer a link can get ----

let site: http.Server;
let siteUrl: string;
let siteHost: string;
let scratch: string;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'cr-context-'));
  site = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/page') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html><head><title>T</title></head><body><nav>menu</nav><main><p>The real content of the page, long enough for Readability to keep it as the article.</p><a href="/other">other</a></main></body></html>');
    if (url === '/notes.md') return void res.writeHead(200, { 'content-type': 'text/markdown' }).end('# Notes\n\nSee [the spec](spec.yaml).\n');
    if (url === '/huge') {
      // 10 MB of text: the read stops at the limit.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = 'x'.repeat(64 * 1024);
      let sent = 0;
      const pump = (): void => {
        while (sent < 10 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      return pump();
    }
    if (url === '/binary') return void res.writeHead(200, { 'content-type': 'text/plain' }).end(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 1]));
    if (url === '/image') return void res.writeHead(200, { 'content-type': 'image/png' }).end('png');
    if (url === '/to-page') return void res.writeHead(302, { location: '/page' }).end();
    if (url === '/to-private') return void res.writeHead(302, { location: 'http://127.0.0.2:9/secret' }).end();
    if (url === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    if (url === '/slow') return void setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('late'), 3000);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteHost = `127.0.0.1:${(site.address() as AddressInfo).port}`;
  siteUrl = `http://${siteHost}`;
});

afterAll(async () => {
  site?.closeAllConnections();
  await new Promise((resolve) => site?.close(resolve));
  await fs.rm(scratch, { recursive: true, force: true });
});

const reason = (promise: Promise<unknown>) =>
  promise.then(
    () => 'read',
    (error: unknown) => (error instanceof UnreadableLinkError ? error.message : `unexpected ${String(error)}`),
  );

describe('fetching a link', () => {
  test('only hosts on the allow-list are read, and a private address only when the list names it', async () => {
    expect(await reason(fetchPage(`${siteUrl}/page`, ['docs.example.com']))).toBe(
      `could not read ${siteUrl}/page: the host is not allowed (${siteHost} is not in the catalog's context.allowHosts (docs.example.com))`,
    );
    expect(await reason(fetchPage('http://127.0.0.2:9/x', [siteHost]))).toMatch(/^could not read http:\/\/127\.0\.0\.2:9\/x: the host is not allowed/);
    // A wildcard entry does not open loopback: only an entry naming the address itself does.
    expect(await reason(fetchPage('http://127.0.0.2:9/x', ['*.0.0.2:9', '127.0.0.2:1']))).toBe('could not read http://127.0.0.2:9/x: 127.0.0.2 is a private or local address');
    expect(await reason(fetchPage('file:///etc/passwd', [siteHost]))).toBe('could not read file:///etc/passwd: only http and https links are read (not file:)');
    expect(await reason(fetchPage(`http://user:pw@${siteHost}/page`, [siteHost]))).toMatch(/credentials/);
    expect((await fetchPage(`${siteUrl}/page`, [siteHost])).kind).toBe('html');
  });

  test('redirects are followed only within the allow-list, and not forever', async () => {
    const followed = await fetchPage(`${siteUrl}/to-page`, [siteHost]);
    expect(followed.finalUrl).toBe(`${siteUrl}/page`);
    expect(await reason(fetchPage(`${siteUrl}/to-private`, [siteHost]))).toBe(
      `could not read ${siteUrl}/to-private: it redirects to 127.0.0.2:9, which is not allowed (127.0.0.2:9 is not in the catalog's allowHosts (${siteHost}))`,
    );
    expect(await reason(fetchPage(`${siteUrl}/loop`, [siteHost]))).toBe(`could not read ${siteUrl}/loop: more than 5 redirects`);
  });

  test('a 10 MB page is cut at the size limit; binary files, other types, errors and slow servers are refused', async () => {
    const huge = await fetchPage(`${siteUrl}/huge`, [siteHost]);
    expect(huge.truncatedAt).toBe(2 * 1024 * 1024);
    expect(huge.body.length).toBe(2 * 1024 * 1024);
    expect(await reason(fetchPage(`${siteUrl}/binary`, [siteHost]))).toBe(`could not read ${siteUrl}/binary: it is a binary file`);
    expect(await reason(fetchPage(`${siteUrl}/image`, [siteHost]))).toMatch(/it is image\/png, not a page or document this service reads/);
    expect(await reason(fetchPage(`${siteUrl}/missing`, [siteHost]))).toBe(`could not read ${siteUrl}/missing: the server answered 404 Not Found`);
    expect(await reason(fetchPage(`${siteUrl}/slow`, [siteHost], { maxBytes: 1024, timeoutMs: 500, maxRedirects: 1 }))).toBe(`could not read ${siteUrl}/slow: no answer within 1 s`);
    expect(await reason(fetchPage('http://127.0.0.1:1/', ['127.0.0.1:1']))).toBe('could not read http://127.0.0.1:1/: the connection was refused');
  });
});

describe('reading a source for a run', () => {
  test('a page is cleaned to Markdown, stored once by hash, and read again from the store in the same run', async () => {
    const store = new SourceStore(path.join(scratch, 'store'));
    const first = await readSource(`${siteUrl}/page`, { store, runId: 'run-1', allowHosts: [siteHost] });
    if (!first.ok) throw new Error(first.unreadable.why);
    expect(first.text).toContain('The real content of the page');
    expect(first.text).not.toContain('menu');
    expect(first.source.hash).toBe(sha256(first.text));
    expect(first.source.links).toEqual([`${siteUrl}/other`]);
    expect(await store.text(first.source.hash)).toBe(first.text);
    // The same link in the same run reads the stored text, even once the page is gone.
    const again = await readSource(`${siteUrl}/page`, { store, runId: 'run-1', allowHosts: [] });
    expect(again).toEqual(first);
    const otherRun = await readSource(`${siteUrl}/page`, { store, runId: 'run-2', allowHosts: [] });
    expect(otherRun.ok).toBe(false);

    const notes = await readSource(`${siteUrl}/notes.md`, { store, runId: 'run-1', allowHosts: [siteHost] });
    expect(notes.ok && notes.source).toMatchObject({ title: 'Notes', format: 'markdown', links: [`${siteUrl}/spec.yaml`] });
    const cut = await readSource(`${siteUrl}/huge`, { store, runId: 'run-1', allowHosts: [siteHost] });
    expect(cut.ok && cut.source.truncatedAt).toBe(2 * 1024 * 1024);
  });

  test('a brief stands only when its sources were read and its quotes occur in them', () => {
    const brief = RequirementBriefSchema.parse({
      goal: 'Show the badge.',
      acceptanceCriteria: [{ text: 'It is green.', source: 'S2' }],
      sources: [{ source: 'S1', quotes: ['the “badge” is   green', 'the badge is red'] }, { source: 'S9', quotes: ['anything'] }],
    });
    const texts = new Map([['S1', 'On every card the "badge" is\ngreen.']]);
    expect(briefProblems(brief, texts)).toEqual([
      'sources: the quote "the badge is red" does not occur in S1; quote the page exactly',
      'sources: S9 is not a source this run read (read: S1)',
      'acceptanceCriteria[0].source: S2 is not a source this run read',
    ]);
    expect(linksIn('See https://a.example/x, and (http://b.example/y). Also https://a.example/x.')).toEqual(['https://a.example/x', 'http://b.example/y']);
  });
});

// ---- the demo PRD, through the real workflow ----

describe('a requirement that is only a link to a PRD', () => {
  let world: World;
  let scenarios: Scenario[];
  /** The first message each agent step was given, by kind: what the model read. */
  const prompts: { kind: AgentTask['kind']; text: string }[] = [];

  let chat: WebChat;

  beforeAll(async () => {
    world = await createWorld();
    scenarios = await demoScenarios();
    scenarios.push(repoSpecScenario(scenarios.find((s) => s.id === 'prd-sale-badge')!));
    chat = await startWebChat({ gateway: world.gateway, router: new ConversationRouter(world.gateway), loadCatalog: () => loadCatalog(world.catalogPath), outboxDir: path.join(world.dataDir, 'worker'), demoRequirements: [] });
    // Attachments are links to the web chat, which the run may always read (as npm start sets it up).
    const contextHosts = [new URL(world.forge.url).host, new URL(world.demoPages.url).host, new URL(chat.url).host];
    await world.startWorker(scenarios, { models: recording(new ScriptedModelProvider(scenarios)), contextHosts });
  });
  afterAll(async () => {
    await chat?.close();
    await world?.close();
  });

  function recording(inner: ModelProvider): ModelProvider {
    return {
      description: inner.description,
      isDemo: inner.isDemo,
      defaultModel: inner.defaultModel,
      forTask(task, choice) {
        const model = inner.forTask(task, choice);
        return {
          name: model.name,
          complete: async (request, signal) => {
            if (request.messages.length === 1) prompts.push({ kind: task.kind, text: request.messages.flatMap((m) => m.content).map((c) => (c.type === 'text' ? c.text : '')).join('\n') });
            return model.complete(request, signal);
          },
        };
      },
    };
  }

  test('reads the PRD and the criteria page it links, and the brief it extracts is checked, shown, corrected and used', async () => {
    const prd = scenarios.find((s) => s.id === 'prd-sale-badge')!;
    const requirement = demoRequirementText(prd.requirement, world.demoPages.url);
    const { runId } = await world.gateway.start({ requirement, requester: 'fiona' });

    let state = await waitForPhase(world.gateway, runId, 'awaiting_confirmation', 120_000);
    expect(state.phaseHistory.map((p) => p.phase).slice(0, 4)).toEqual(['intake', 'gathering', 'proposing', 'awaiting_confirmation']);
    const { sources, brief } = state.intake;
    if (!brief) throw new Error(`no brief: ${state.intake.note}; ${JSON.stringify(await world.gateway.transcript(runId, state.transcripts[0]!.id))}`);
    // The PRD, bff-api's own definition (its catalog entry's openapi, named by repository), the page the PRD links.
    expect(sources.map((s) => [s.id, s.url, s.via])).toEqual([
      ['S1', `${world.demoPages.url}/prd/sale-badge.html`, 'requirement'],
      ['bff-api/openapi.yaml', `${world.forge.url}/demo/bff-api/blob/main/openapi.yaml`, 'catalog'],
      ['S2', `${world.demoPages.url}/prd/sale-badge-criteria.html`, 'linked'],
    ]);
    expect(sources[1]!.api!.operations.map((op) => op.operationId)).toEqual(['listProducts', 'getProduct', 'health']);
    // Criteria from both pages, and every quote is in the page it cites (checked again here, on the stored text).
    expect(new Set(brief!.brief.acceptanceCriteria.map((c) => c.source))).toEqual(new Set(['S1', 'S2']));
    const store = SourceStore.under(path.join(world.dataDir, 'worker'));
    const texts = new Map<string, string>();
    for (const source of sources) texts.set(source.id, (await store.text(source.hash))!);
    expect(briefProblems(brief!.brief, texts)).toEqual([]);
    expect(brief!.brief.sources.map((s) => s.source)).toEqual(['S1', 'S2']);
    // Its tokens are accounted as their own step.
    expect(state.budget.steps.find((s) => s.step === 'read the requirement')!.spend.turns).toBe(2);

    // The card shows it short; the proposal read it beside the requirement.
    const card = cardFor(state);
    const section = card.sections.find((s) => s.heading === 'Requirement brief')!;
    expect(section.lines[0]).toContain('Every product card shows a Sale badge');
    expect(section.lines[0]).toContain('5 acceptance criteria');
    expect(prompts.find((p) => p.kind === 'propose')!.text).toContain('A product without a discount shows no sale badge.');

    // A correction and an unreadable link, replied in the thread while the proposal waits.
    await world.gateway.send(runId, 'reply', { by: 'pam', key: 'fix-brief', text: 'The criteria miss that a screen reader announces the badge as "Sale, 20 percent off".' });
    state = await waitForState(world.gateway, runId, (s) => (s.intake.brief?.version ?? 0) >= 2);
    expect(state.phase).toBe('awaiting_confirmation');
    expect(state.intake.brief!.brief.acceptanceCriteria.at(-1)).toEqual({ text: 'Screen readers announce the badge as "Sale, 20 percent off".', source: null });
    expect(prompts.filter((p) => p.kind === 'extract').at(-1)!.text).toContain('Corrections and additions since the previous brief');
    await world.gateway.send(runId, 'reply', { by: 'pam', key: 'bad-link', text: 'The design is at http://design.example.com/sale and http://127.0.0.2:9/x' });
    state = await waitForState(world.gateway, runId, (s) => s.intake.unreadable.length >= 2);
    expect(state.phase).toBe('awaiting_confirmation');
    const notes = cardFor(state).sections.find((s) => s.heading === 'Context notes')!.lines;
    expect(notes).toEqual([
      expect.stringMatching(/^could not read http:\/\/design\.example\.com\/sale: the host is not allowed/),
      expect.stringMatching(/^could not read http:\/\/127\.0\.0\.2:9\/x: the host is not allowed/),
    ]);
    expect(state.intake.brief!.version).toBe(3); // the text was a correction too; the brief still stands

    // Confirm: the edits and the summary read the brief too.
    await world.gateway.send(runId, 'confirmRepos', { by: 'fiona', key: 'confirm', repos: ['ui-kit', 'bff-api', 'web-app'], cardVersion: state.cardVersion });
    state = await waitForPhase(world.gateway, runId, 'awaiting_review', 180_000);
    const editPrompts = prompts.filter((p) => p.kind === 'edit');
    expect(editPrompts.length).toBeGreaterThanOrEqual(3);
    for (const prompt of editPrompts) expect(prompt.text).toContain('Screen readers announce the badge as "Sale, 20 percent off".');
    expect(prompts.find((p) => p.kind === 'summarize')!.text).toContain('Requirement brief');
    expect(Object.values(state.repos).every((r) => r.checks.at(-1)?.passed)).toBe(true);
    // The PRs carry the criteria as a checklist, each linked to the page it came from.
    const body = renderSummaryMarkdown(state.summary!);
    expect(body).toContain(`- [ ] A product without a discount shows no sale badge. ([S2](${world.demoPages.url}/prd/sale-badge-criteria.html))`);
    expect(body).toContain('- [ ] Screen readers announce the badge as "Sale, 20 percent off".\n');
    await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'done-here' });
    await waitForPhase(world.gateway, runId, 'cancelled');
    await recordHistory(world.env.client, runId, 'prd-link-brief-corrected-then-cancel');
  });

  test('an OpenAPI definition attached in the web chat: a malformed one is refused with its path, a valid one gives the edits its exact operation', async () => {
    const prd = scenarios.find((s) => s.id === 'prd-sale-badge')!;
    const post = async (route: string, body: unknown) => {
      const response = await fetch(`${chat.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const started = await post('/api/threads', { as: 'fiona', text: demoRequirementText(prd.requirement, world.demoPages.url), eventId: 'start-openapi-1' });
    const runId = started.body.runId as string;
    await waitForPhase(world.gateway, runId, 'awaiting_confirmation', 120_000);
    const spec = await fs.readFile(path.join(__dirname, '..', 'demo', 'pages', 'api', 'bff-api.yaml'), 'utf8');

    // A definition whose response lacks its description: refused, the validator's path in the note.
    const broken = spec.replace("'200':\n          description: The products\n", "'200':\n");
    expect((await post(`/api/runs/${runId}/attachments`, { as: 'fiona', name: 'broken.yaml', content: broken, eventId: 'attach-broken-1' })).status).toBe(200);
    let state = await waitForState(world.gateway, runId, (s) => s.intake.unreadable.some((u) => u.url.endsWith('/broken.yaml')));
    const refusal = state.intake.unreadable.find((u) => u.url.endsWith('/broken.yaml'))!;
    expect(refusal.why).toMatch(/^it is not a valid OpenAPI 3\.0\.3 document: .*#\/paths\/~1api~1products\/get\/responses\/200 must have required property 'description'/);
    expect(cardFor(state).sections.find((s) => s.heading === 'Context notes')!.lines.join('\n')).toContain(`could not read ${refusal.url}: it is not a valid OpenAPI 3.0.3 document`);
    // Files the web chat will not keep are refused at the door, and nothing reaches the run.
    expect((await post(`/api/runs/${runId}/attachments`, { as: 'fiona', name: 'page.html', content: '<script>1</script>', eventId: 'attach-html-1' })).status).toBe(415);

    // The backend team's definition: read, validated, and the operation the brief names is given exactly.
    expect((await post(`/api/runs/${runId}/attachments`, { as: 'fiona', name: 'bff-api.yaml', content: spec, text: 'Here is the API definition for the sale.', eventId: 'attach-spec-1' })).status).toBe(200);
    state = await waitForState(world.gateway, runId, (s) => (s.intake.brief?.operations ?? []).length > 0);
    const source = state.intake.sources.find((s) => s.api && s.via !== 'catalog')!;
    expect(source).toMatchObject({ id: 'S3', via: 'context', format: 'yaml', api: { title: 'Acme Shop BFF API', version: '2.1.0', spec: 'OpenAPI 3.0.3' } });
    const parsed = await importApiSpec(spec);
    if (parsed.kind !== 'spec') throw new Error('the demo definition must be valid');
    const exact = operationShape(parsed.document, 'get', '/api/products');
    expect(exact).toContain('discountPercent:\n');
    expect(state.intake.brief!.operations).toEqual([{ source: 'S3', method: 'get', path: '/api/products', operationId: 'listProducts', shape: exact, from: source.url }]);

    const before = prompts.length;
    await world.gateway.send(runId, 'confirmRepos', { by: 'fiona', key: 'confirm-openapi', repos: ['ui-kit', 'bff-api', 'web-app'] });
    await waitForPhase(world.gateway, runId, 'awaiting_review', 180_000);
    const edits = prompts.slice(before).filter((p) => p.kind === 'edit');
    for (const repo of ['bff-api', 'web-app']) {
      const prompt = edits.find((p) => p.text.includes(`You are editing ${repo}`))!;
      expect(prompt.text).toContain(exact.trimEnd());
    }
    await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'done-openapi' });
    await waitForPhase(world.gateway, runId, 'cancelled');
  });

  test("an api repository's own definition: its operation reaches the edits, and after the run edits the definition its dependents get the new shape", async () => {
    const scenario = scenarios.find((s) => s.id === 'repo-spec-sale-badge')!;
    const { runId } = await world.gateway.start({ requirement: demoRequirementText(scenario.requirement, world.demoPages.url), requester: 'fiona' });
    let state = await waitForPhase(world.gateway, runId, 'awaiting_confirmation', 120_000);
    const source = state.intake.sources.find((s) => s.via === 'catalog')!;
    expect(source).toMatchObject({ id: 'bff-api/openapi.yaml', repo: { id: 'bff-api', path: 'openapi.yaml' }, api: { title: 'Acme Shop BFF API', version: '2.0.0' } });
    // As released: no discount yet.
    const released = state.intake.brief!.operations;
    expect(released).toEqual([expect.objectContaining({ source: 'bff-api/openapi.yaml', method: 'get', path: '/api/products', operationId: 'listProducts', from: source.url })]);
    expect(released[0]!.shape).toContain('priceCents:');
    expect(released[0]!.shape).not.toContain('discountPercent');

    const before = prompts.length;
    await world.gateway.send(runId, 'confirmRepos', { by: 'fiona', key: 'confirm-repo-spec', repos: ['ui-kit', 'bff-api', 'web-app'] });
    state = await waitForPhase(world.gateway, runId, 'awaiting_review', 180_000);
    // bff-api's edit changed openapi.yaml on the run's branch; web-app, edited after it, was given that shape.
    const edited = state.intake.brief!.operations[0]!;
    expect(edited.from).toBe(`${world.forge.url}/demo/bff-api/blob/${state.repos['bff-api']!.headSha}/openapi.yaml`);
    expect(edited.shape).toContain('discountPercent:');
    const edits = prompts.slice(before).filter((p) => p.kind === 'edit');
    const apiPrompt = edits.find((p) => p.text.includes('You are editing bff-api'))!;
    const appPrompt = edits.find((p) => p.text.includes('You are editing web-app'))!;
    expect(apiPrompt.text).toContain(released[0]!.shape.trimEnd());
    expect(appPrompt.text).toContain(edited.shape.trimEnd());
    expect(Object.values(state.repos).every((r) => r.checks.at(-1)?.passed)).toBe(true);
    await world.gateway.send(runId, 'cancel', { by: 'fiona', key: 'done-repo-spec' });
    await waitForPhase(world.gateway, runId, 'cancelled');
    await recordHistory(world.env.client, runId, 'repo-spec-shapes-after-edit-then-cancel');
  });
});

/**
 * The PRD demo with its brief naming bff-api's own listProducts, and bff-api's edit also describing the new
 * field in its openapi.yaml (as a backend change should), so the definition changes within the run.
 */
function repoSpecScenario(prd: Scenario): Scenario {
  const scenario = structuredClone(prd);
  scenario.id = 'repo-spec-sale-badge';
  scenario.requirement = 'Please build what our PRD describes, with the API as bff-api defines it: ${DEMO_PAGES_URL}/prd/sale-badge.html';
  scenario.match = [...prd.match, 'as bff-api defines it'];
  delete scenario.correct;
  const submit = scenario.gather!.at(-1)!.calls.find((c) => c.name === 'submit_brief')!;
  (submit.input as Record<string, unknown>).apiOperations = [{ source: 'bff-api/openapi.yaml', operationId: 'listProducts', why: 'the product cards list these products' }];
  const writes = scenario.edit['bff-api']!.initial.find((turn) => turn.calls.some((c) => c.name === 'write_file'))!;
  writes.calls.push({
    name: 'replace_in_file',
    input: {
      path: 'openapi.yaml',
      old: '        priceCents: { type: integer, minimum: 0, description: Price in cents }\n',
      new: '        priceCents: { type: integer, minimum: 0, description: Price in cents }\n        discountPercent: { type: integer, minimum: 0, maximum: 99, description: The discount as a whole percentage; 0 when not on sale }\n',
    },
  });
  return scenario;
}
