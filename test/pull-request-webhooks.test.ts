// Pull request webhooks: the forge delivers them as GitHub does, signed; the receiver tells the run whose
// branch it is to look now. With tracking set to look only once an hour, a merge on the forge still ends
// the run within seconds. A delivery without the right signature is refused and changes nothing.
import { createWorld, demoScenarios, waitForPhase, type World } from './helpers/world';
import { signature, startPullRequestWebhooks, WEBHOOK_PATH, type PullRequestWebhooks } from '../client/pull-request-webhooks';

jest.setTimeout(180_000);

const SECRET = 'a-webhook-secret-of-the-test';
let world: World;
let webhooks: PullRequestWebhooks;
let stop: () => Promise<void>;

beforeAll(async () => {
  world = await createWorld({ policy: { trackPullRequestsEvery: '1h', trackPullRequestsAtMostEvery: '1h' } });
  ({ stop } = await world.startWorker(await demoScenarios()));
  webhooks = await startPullRequestWebhooks({ client: world.env.client, secret: SECRET });
  world.forge.addWebhook({ url: `${webhooks.url}${WEBHOOK_PATH}`, secret: SECRET });
});

afterAll(async () => {
  await webhooks?.close();
  await stop?.();
  await world?.close();
});

const deliver = (event: string, body: string, sign = signature(SECRET, body)) =>
  fetch(`${webhooks.url}${WEBHOOK_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-hub-signature-256': sign }, body });

test('a merge on the forge reaches the run at once through its webhook, though tracking looks only hourly', async () => {
  const { runId } = await world.gateway.start({ requirement: 'Show a Sale badge with the discount percentage on discounted products', requester: 'fiona', autonomy: 'fixed', repos: ['ui-kit'] });
  await waitForPhase(world.gateway, runId, 'awaiting_review');
  await world.gateway.send(runId, 'approve', { by: 'fiona', key: `${runId}-approve` });
  let state = await waitForPhase(world.gateway, runId, 'tracking');
  // The first look is done and the next one is an hour away.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  state = await world.gateway.state(runId);
  expect(state.tracking!.nextLookAt! - Date.now()).toBeGreaterThan(50 * 60_000);

  // Opened in a browser, the address says what it is and does nothing.
  expect(await (await fetch(`${webhooks.url}${WEBHOOK_PATH}`)).json()).toMatchObject({ receiver: 'pull request webhooks' });
  // A forged delivery naming the run's branch is refused; one about another branch is taken and ignored.
  const forged = JSON.stringify({ action: 'closed', pull_request: { head: { ref: `change-request/${runId}` } } });
  expect((await deliver('pull_request', forged, signature('not-the-secret-at-all', forged))).status).toBe(401);
  expect((await deliver('pull_request', forged, 'sha1=abc')).status).toBe(401);
  const elsewhere = JSON.stringify({ action: 'closed', pull_request: { head: { ref: 'feature/x' } } });
  expect(await (await deliver('pull_request', elsewhere)).json()).toEqual({ event: 'pull_request', runs: [] });
  expect((await world.gateway.state(runId)).phase).toBe('tracking');

  const merged = await fetch(`${world.forge.apiUrl}/repos/demo/ui-kit/pulls/${state.repos['ui-kit']!.pr!.number}/merge`, { method: 'PUT', headers: { authorization: `token ${world.forgeToken}` } });
  expect(merged.status).toBe(200);
  const done = await waitForPhase(world.gateway, runId, 'done', 20_000);
  expect(done.repos['ui-kit']!.pr!.state).toBe('merged');
  expect(done.outcome!.reason).toBe(`every pull request is decided: ui-kit #${state.repos['ui-kit']!.pr!.number} merged`);
});
