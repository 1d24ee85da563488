// The web chat page: pick who you are, start a change request, follow its thread and act on its card.
// Plain DOM, no build step. Everything that comes from the server goes onto the page as text
// (textContent and text nodes, the DOM's own HTML escaping) and URLs only after checking their scheme, so
// nothing in a requirement, a summary or an agent's notes can run here.
'use strict';

const PHASES = {
  intake: { label: 'starting', tone: 'working' },
  gathering: { label: 'reading links', tone: 'working' },
  proposing: { label: 'proposing', tone: 'working' },
  awaiting_confirmation: { label: 'needs confirmation', tone: 'waiting' },
  editing: { label: 'editing', tone: 'working' },
  awaiting_budget: { label: 'budget question', tone: 'waiting' },
  checking: { label: 'checking', tone: 'working' },
  previewing: { label: 'previewing', tone: 'working' },
  awaiting_review: { label: 'ready for review', tone: 'waiting' },
  publishing: { label: 'opening PRs', tone: 'working' },
  tracking: { label: 'PRs open', tone: 'waiting' },
  done: { label: 'done', tone: 'done' },
  cancelled: { label: 'cancelled', tone: 'ended' },
  failed: { label: 'failed', tone: 'failed' },
};
const ENDED = ['done', 'cancelled', 'failed'];
const THREADS_EVERY_MS = 5000;

const app = {
  people: [],
  me: null,
  threads: [],
  /** The open thread: its latest view, the repositories ticked on its card, its long poll. */
  open: null,
  /** Replies to this page's own actions (refusals, errors), per run: like a chat's "only visible to you". */
  notices: new Map(),
  busy: false,
};

const byId = (id) => document.getElementById(id);

/** Builds an element. Strings among the children become text nodes, so they are never read as HTML. */
function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') element.className = value;
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  return fill(element, children, false);
}

/** Puts children (nodes, strings, nested arrays; null and false are skipped) into an element. */
function fill(element, children, replace = true) {
  if (replace) element.replaceChildren();
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined && child !== false) element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

/** Only http(s) addresses become links or images; anything else (javascript:, data:) stays text. */
function safeUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** A random id per click: a retried request carries the same one and has one effect. */
function newEventId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function api(method, url, body, signal) {
  const response = await fetch(url, {
    method,
    signal,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.error || `HTTP ${response.status}`), { status: response.status });
  return data;
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function clock(at) {
  return new Date(at).toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

function personName(handle) {
  return app.people.find((p) => p.handle === handle)?.name ?? handle;
}

function phasePill(phase) {
  const known = PHASES[phase] ?? { label: phase ?? 'unknown', tone: 'ended' };
  return h('span', { class: `pill ${known.tone}` }, known.label);
}

// ---- who you are ----

async function loadPeople() {
  app.people = (await api('GET', '/api/people')).people;
  const select = byId('person');
  select.replaceChildren(...app.people.map((p) => h('option', { value: p.handle }, p.name === p.handle ? p.handle : `${p.name} · ${p.handle}`)));
  const remembered = localStorage.getItem('web-chat-person');
  app.me = app.people.some((p) => p.handle === remembered) ? remembered : app.people[0]?.handle ?? null;
  select.value = app.me ?? '';
  select.addEventListener('change', () => {
    app.me = select.value;
    localStorage.setItem('web-chat-person', app.me);
    drawPerson();
  });
  drawPerson();
}

function drawPerson() {
  const person = app.people.find((p) => p.handle === app.me);
  if (!person) return byId('person-details').replaceChildren();
  const parts = [
    person.groups.length ? `in ${person.groups.join(', ')}` : null,
    person.owns.length ? `reviews ${person.owns.join(', ')}` : 'reviews no repository',
    `may target ${person.mayTarget.length ? person.mayTarget.join(', ') : 'nothing'}`,
  ];
  byId('person-details').textContent = parts.filter(Boolean).join(' · ');
}

// ---- threads ----

async function refreshThreads() {
  try {
    app.threads = (await api('GET', '/api/threads')).threads;
    drawThreads();
  } catch {
    // The list is a convenience; the open thread says when the server is unreachable.
  }
}

function drawThreads() {
  const openId = app.open?.runId;
  byId('threads-empty').hidden = app.threads.length > 0;
  byId('threads').replaceChildren(
    ...app.threads.map((thread) => {
      // The open thread's own state is fresher than the list's search attributes.
      const phase = thread.runId === openId && app.open.state ? app.open.state.phase : thread.phase;
      // The gateway's summary line is "<requester>: <requirement>"; the requester is shown on its own.
      const text = (thread.summary ?? thread.runId).replace(`${thread.requester}: `, '');
      return h(
        'li',
        {},
        h(
          'a',
          { href: `#/runs/${thread.runId}`, class: 'thread-link', 'aria-current': thread.runId === openId ? 'page' : null },
          h('span', { class: 'thread-text' }, text),
          h('span', { class: 'thread-meta' }, phasePill(phase), ` ${thread.requester ?? ''} · ${clock(thread.startedAt)}`),
        ),
      );
    }),
  );
}

// ---- starting a request ----

async function loadSuggestions() {
  const { requirements } = await api('GET', '/api/demos');
  byId('suggestions').replaceChildren(
    ...requirements.map((text) =>
      h('li', {}, h('button', { type: 'button', class: 'suggestion', onclick: () => useSuggestion(text) }, text)),
    ),
  );
}

function useSuggestion(text) {
  const box = byId('requirement');
  box.value = text;
  box.focus();
}

async function startRequest(event) {
  event.preventDefault();
  const text = byId('requirement').value.trim();
  const error = byId('composer-error');
  error.textContent = '';
  if (!text || !app.me) {
    error.textContent = text ? 'Pick who you are first.' : 'Describe what should change first.';
    return;
  }
  setBusy(true);
  try {
    const outcome = await api('POST', '/api/threads', { as: app.me, text, eventId: newEventId() });
    if (outcome.kind === 'started') {
      byId('requirement').value = '';
      location.hash = `#/runs/${outcome.runId}`;
      refreshThreads();
    } else {
      error.textContent = outcome.reason ?? outcome.why ?? 'The request was not started.';
    }
  } catch (failure) {
    error.textContent = `Could not start: ${failure.message}`;
  } finally {
    setBusy(false);
  }
}

// ---- one thread ----

function openThread(runId) {
  if (app.open?.runId === runId) return;
  closeThread();
  app.open = { runId, state: null, card: null, messages: [], selection: null, selectionCardVersion: null, poller: null, drawnCard: '' };
  byId('thread-title').textContent = 'Loading…';
  byId('thread-meta').textContent = '';
  byId('connection').textContent = '';
  byId('card').replaceChildren();
  byId('messages').replaceChildren();
  poll(app.open);
  drawThreads();
}

function closeThread() {
  app.open?.poller?.abort();
  app.open = null;
}

/** Long-polls the run: each answer comes as soon as the run moves (or after ~20 s with nothing new). */
async function poll(view) {
  view.poller?.abort();
  const poller = new AbortController();
  view.poller = poller;
  for (let failures = 0; app.open === view && !poller.signal.aborted; ) {
    const query = new URLSearchParams();
    if (view.state) {
      query.set('after', view.state.version);
      query.set('messages', view.messages.length);
    }
    if (view.selection) query.set('selection', view.selection.join(','));
    try {
      const answer = await api('GET', `/api/runs/${encodeURIComponent(view.runId)}?${query}`, null, poller.signal);
      if (poller.signal.aborted) return;
      failures = 0;
      byId('connection').textContent = '';
      receive(view, answer);
    } catch (error) {
      if (poller.signal.aborted) return;
      if (error.status === 404) return showMissing(view, error.message);
      byId('connection').textContent = `Reconnecting… (${error.message})`;
      await delay(Math.min(8000, 500 * 2 ** failures++));
    }
  }
}

function receive(view, { state, card, messages }) {
  const phaseMoved = view.state?.phase !== state.phase;
  // A selection belongs to the card it was made on; a new card starts from the proposal again.
  if (view.selection && card.cardVersion !== view.selectionCardVersion) view.selection = null;
  view.state = state;
  view.card = card;
  view.messages = messages;
  drawThread();
  if (phaseMoved) drawThreads();
}

function showMissing(view, reason) {
  byId('thread-title').textContent = 'No such thread';
  byId('thread-meta').textContent = reason;
  byId('reply-form').hidden = true;
  view.poller?.abort();
}

function drawThread() {
  const view = app.open;
  if (!view?.state) return;
  const { state } = view;
  byId('thread-title').textContent = state.request.requirement;
  byId('thread-meta').replaceChildren(phasePill(state.phase), ` Requested by ${personName(state.request.requester)} · ${clock(state.request.createdAt)}`);
  drawCard(view);
  drawBrief(view);
  drawChanges(view);
  drawMessages(view);
  drawReplyBox(view);
}

function drawCard(view) {
  // Redraw only when the card changed: a redraw reloads images and drops the focus on a button.
  const signature = JSON.stringify(view.card);
  if (signature === view.drawnCard) return;
  view.drawnCard = signature;
  const { card } = view;
  fill(byId('card'), [
    h('p', { class: 'card-status' }, card.status),
    card.choices.length ? h('ul', { class: 'choices', 'aria-label': 'Proposed repositories' }, card.choices.map(drawChoice)) : null,
    card.sections.map(drawSection),
    card.links.length ? h('ul', { class: 'links', 'aria-label': 'Links' }, card.links.map(drawLink)) : null,
    card.buttons.length ? h('div', { class: 'actions' }, card.buttons.map((button) => drawButton(button))) : null,
    // The card's hint (how to reply) is shown by the reply box it is about, not here.
  ]);
}

/** The whole requirement brief with its sources and quotes; the card carries only its short form. */
function drawBrief(view) {
  const intake = view.state.intake;
  const panel = byId('brief');
  const record = intake?.brief;
  const signature = JSON.stringify(intake ?? null);
  if (signature === view.drawnBrief) return;
  view.drawnBrief = signature;
  panel.hidden = !record && !(intake?.sources?.length);
  if (panel.hidden) return;
  const sourceOf = (id) => intake.sources.find((s) => s.id === id);
  const linkTo = (id) => {
    const source = sourceOf(id);
    const url = source && safeUrl(source.url);
    return url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, `${id} ${source.title}`) : id;
  };
  const list = (title, items) => (items.length ? [h('h3', {}, title), h('ul', {}, items.map((item) => h('li', {}, ...[].concat(item))))] : []);
  byId('brief-heading').textContent = record ? `Requirement brief (version ${record.version}, from ${intake.sources.length} source${intake.sources.length === 1 ? '' : 's'})` : 'Sources read';
  const brief = record?.brief;
  fill(byId('brief-body'), [
    brief ? h('p', {}, h('strong', {}, 'Goal. '), brief.goal) : null,
    ...(brief
      ? [
          ...list('User-visible behaviour', brief.behaviour),
          ...list('Acceptance criteria', brief.acceptanceCriteria.map((c) => (c.source ? [c.text, ' (', linkTo(c.source), ')'] : c.text))),
          ...list('UI copy', brief.uiCopy.map((c) => `“${c.text}”${c.where ? ` (${c.where})` : ''}`)),
          ...list('Data and API', brief.dataAndApi),
          ...list('Out of scope', brief.outOfScope),
          ...list('Open questions', brief.openQuestions),
          ...list('Quoted from', brief.sources.map((s) => [linkTo(s.source), ...s.quotes.map((q) => h('blockquote', {}, q))])),
        ]
      : []),
    ...list('Sources read', intake.sources.map((s) => [linkTo(s.id), ` · ${s.format}, ${s.chars} characters${s.truncatedAt ? `, cut at ${s.truncatedAt} bytes` : ''} · ${s.via} · sha256 ${s.hash.slice(0, 12)}`])),
    ...list('Could not read', intake.unreadable.map((u) => `${u.url}: ${u.why}`)),
    intake.note ? h('p', { class: 'muted' }, intake.note) : null,
  ]);
}

/**
 * Each changed repository's diff, in total or per round: rendered by the server with diff2html (which
 * escapes the diff's text), one collapsible section per file.
 */
function drawChanges(view) {
  const changed = Object.values(view.state.repos).filter((r) => r.commits.length > 0 && r.headSha);
  const signature = JSON.stringify(changed.map((r) => [r.id, r.headSha, r.commits.map((c) => c.sha)]));
  const panel = byId('changes');
  if (signature === view.drawnChanges) return;
  view.drawnChanges = signature;
  panel.hidden = changed.length === 0;
  view.diffChoice ??= {};
  fill(byId('changes-heading'), [`Changes in ${changed.length} repositor${changed.length === 1 ? 'y' : 'ies'}`]);
  fill(byId('changes-body'), changed.map((repo) => {
    const output = h('div', { class: 'diff', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading the diff…'));
    const hostLink = h('a', { class: 'diff-host', target: '_blank', rel: 'noopener noreferrer', hidden: true }, 'open on its host');
    const rounds = [...new Set(repo.commits.map((c) => c.round))];
    const choice = view.diffChoice[repo.id] ?? 'total';
    const select = h('select', { 'aria-label': `Diff of ${repo.id}`, onchange: (event) => { view.diffChoice[repo.id] = event.target.value; loadDiff(view, repo.id, event.target.value, output, hostLink); } },
      h('option', { value: 'total', selected: choice === 'total' }, 'all rounds'),
      rounds.map((n) => h('option', { value: String(n), selected: choice === String(n) }, `round ${n}`)));
    loadDiff(view, repo.id, choice, output, hostLink);
    return h('section', { class: 'repo-diff', 'aria-label': `${repo.id} diff` },
      h('h3', {}, `${repo.id} `, h('span', { class: 'muted' }, `${repo.diffStat.files} file(s) +${repo.diffStat.insertions} −${repo.diffStat.deletions}`)),
      h('p', { class: 'diff-controls' }, select, ' ', hostLink),
      output);
  }));
}

async function loadDiff(view, repo, round, output, hostLink) {
  try {
    const diff = await api('GET', `/api/runs/${encodeURIComponent(view.runId)}/diff?repo=${encodeURIComponent(repo)}&round=${encodeURIComponent(round)}`);
    if (app.open !== view) return;
    output.innerHTML = diff.html; // diff2html's output, made by this web chat's server from the diff's text
    const url = safeUrl(diff.url);
    hostLink.hidden = !url;
    if (url) hostLink.href = url;
  } catch (error) {
    fill(output, [h('p', { class: 'error' }, `Could not show the diff: ${error.message}`)]);
  }
}

function drawChoice(choice) {
  // A repository the agent did not propose has no confidence; its reason says so.
  const confidence = choice.confidence === null ? null : h('span', { class: 'confidence' }, `${Math.round(choice.confidence * 100)}% confident`);
  return h(
    'li',
    { class: `choice${choice.selected ? ' selected' : ''}` },
    h(
      'div',
      { class: 'choice-head' },
      h('span', { class: 'tick', 'aria-hidden': 'true' }, choice.selected ? '✓' : ''),
      h('strong', { class: 'repo' }, choice.repo),
      h('span', { class: 'tag' }, choice.role),
      confidence,
      drawButton(choice.toggle, `${choice.toggle.label} ${choice.repo}`),
    ),
    h('p', { class: 'reason' }, choice.reason),
  );
}

function drawSection(section) {
  const image = section.image && safeUrl(section.image.url);
  return h(
    'section',
    { class: 'card-section' },
    h('h3', {}, section.heading),
    section.lines.map((line) => {
      const url = safeUrl(line.trim());
      return h('p', { class: 'line' }, url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, line) : line);
    }),
    image ? h('a', { href: image, target: '_blank', rel: 'noopener noreferrer', class: 'shot' }, h('img', { src: image, alt: section.image.alt })) : null,
  );
}

function drawLink(link) {
  const url = safeUrl(link.url);
  return h('li', {}, url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'chip' }, link.label) : `${link.label}: ${link.url}`);
}

function drawButton(button, accessibleName) {
  return h(
    'button',
    {
      type: 'button',
      class: `button ${button.style}`,
      'aria-label': accessibleName && accessibleName !== button.label ? accessibleName : null,
      disabled: app.busy,
      onclick: () => press(button.value),
    },
    button.label,
  );
}

function drawMessages(view) {
  const { state } = view;
  const items = [
    ...state.context.map((c) => ({ at: c.at, who: personName(c.by), what: 'added context', text: c.text, kind: 'person' })),
    ...state.feedback.map((f) => ({ at: f.at, who: personName(f.by), what: `feedback${f.repos.length ? ` on ${f.repos.join(', ')}` : ''}`, text: f.text, kind: 'person' })),
    ...view.messages.map((m) => ({ at: m.at, who: 'Change requests', what: 'message', text: m.text, kind: 'service' })),
    ...(app.notices.get(view.runId) ?? []).map((n) => ({ at: n.at, who: 'Change requests', what: 'shown on this page only', text: n.text, kind: 'notice' })),
  ].sort((a, b) => a.at - b.at);
  const list = byId('messages');
  if (!items.length) return list.replaceChildren(h('li', { class: 'muted empty' }, 'No replies yet. Reminders and replies to your actions appear here.'));
  list.replaceChildren(
    ...items.map((item) =>
      h(
        'li',
        { class: `message ${item.kind}` },
        h('p', { class: 'message-head' }, h('strong', {}, item.who), ` · ${item.what} · ${clock(item.at)}`),
        h('p', { class: 'message-text' }, item.text),
      ),
    ),
  );
}

function drawReplyBox(view) {
  const { state, card } = view;
  // Once the pull requests are open, what changes is said on them; the run only follows them.
  const tracking = state.phase === 'tracking';
  const ended = ENDED.includes(state.phase) || tracking;
  const reviewing = state.phase === 'awaiting_review';
  byId('reply-form').hidden = false;
  byId('reply-label').textContent = reviewing ? 'Feedback' : 'Reply in this thread';
  byId('reply-hint').textContent = tracking
    ? 'The pull requests are open: comment on them there, or start a new change request for more changes.'
    : ended
      ? `This change request is ${state.phase}. Start a new one for more changes.`
      : card.hint ?? 'Replies are added as context for the agent.';
  byId('reply').disabled = ended;
  byId('reply-send').disabled = ended || app.busy;
  byId('reply-send').textContent = reviewing ? 'Send feedback' : 'Send';
}

/** An outcome's card, unless a poll has already brought a later one. */
function showNewerCard(view, card) {
  if (!view.card || card.cardVersion >= view.card.cardVersion) view.card = card;
}

function addNotice(runId, text) {
  const list = app.notices.get(runId) ?? [];
  list.push({ at: Date.now(), text });
  app.notices.set(runId, list);
}

/** While a request is on its way, its buttons cannot be pressed again (a second press would be a second event). */
function setBusy(busy) {
  app.busy = busy;
  for (const button of document.querySelectorAll('#card button, #composer-form button')) button.disabled = busy;
  if (app.open?.state) drawThread();
}

async function press(value) {
  const view = app.open;
  if (!view || app.busy) return;
  setBusy(true);
  try {
    const outcome = await api('POST', `/api/runs/${encodeURIComponent(view.runId)}/buttons`, { as: app.me, value, eventId: newEventId() });
    if (app.open !== view) return;
    switch (outcome.kind) {
      case 'rerender':
        view.selection = outcome.card.choices.filter((c) => c.selected).map((c) => c.repo);
        view.selectionCardVersion = outcome.card.cardVersion;
        view.card = outcome.card;
        break;
      case 'accepted':
        view.selection = null;
        showNewerCard(view, outcome.card);
        break;
      case 'refused':
        addNotice(view.runId, outcome.reason);
        if (outcome.card) {
          view.selection = null;
          showNewerCard(view, outcome.card);
        }
        break;
      case 'ask_feedback':
        byId('reply').focus();
        break;
      case 'duplicate':
        break;
    }
    // Ask again at once: with a new selection, or for the state that goes with the card just shown.
    poll(view);
  } catch (error) {
    addNotice(view.runId, `Could not send that: ${error.message}`);
  } finally {
    setBusy(false);
  }
}

async function sendReply(event) {
  event.preventDefault();
  const view = app.open;
  const box = byId('reply');
  const picker = byId('attachment');
  const text = box.value.trim();
  const file = picker.files?.[0] ?? null;
  if (!view?.state || (!text && !file) || app.busy) return;
  // Typed into the review box it is feedback, and refused if the review is over; otherwise a reply (context).
  // An attachment goes with the text as one reply that links it (the run reads it like any link).
  const endpoint = file ? 'attachments' : view.state.phase === 'awaiting_review' ? 'feedback' : 'messages';
  setBusy(true);
  try {
    const body = file ? { as: app.me, name: file.name, content: await file.text(), ...(text ? { text } : {}), eventId: newEventId() } : { as: app.me, text, eventId: newEventId() };
    const outcome = await api('POST', `/api/runs/${encodeURIComponent(view.runId)}/${endpoint}`, body);
    if (outcome.kind === 'fed') {
      box.value = '';
      picker.value = '';
    }
    else if (outcome.kind === 'refused') addNotice(view.runId, outcome.reason);
    else if (outcome.kind === 'ignored') addNotice(view.runId, `Not sent: ${outcome.why}`);
  } catch (error) {
    addNotice(view.runId, `Could not send that: ${error.message}`);
  } finally {
    setBusy(false);
  }
}

// ---- navigation ----

function route() {
  const match = /^#\/runs\/([^/]+)$/.exec(location.hash);
  byId('composer').hidden = Boolean(match);
  byId('thread').hidden = !match;
  if (match) return openThread(decodeURIComponent(match[1]));
  closeThread();
  drawThreads();
  byId('requirement').focus();
}

async function main() {
  byId('composer-form').addEventListener('submit', startRequest);
  byId('reply-form').addEventListener('submit', sendReply);
  window.addEventListener('hashchange', route);
  await Promise.all([loadPeople(), loadSuggestions(), refreshThreads()]);
  route();
  setInterval(refreshThreads, THREADS_EVERY_MS);
}

main().catch((error) => {
  document.body.prepend(h('p', { class: 'error banner', role: 'alert' }, `The web chat could not load: ${error.message}`));
});
