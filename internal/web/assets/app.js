// Grapevine's web UI: plain JavaScript, served by your own node, nothing
// loaded from elsewhere. Everything a contact wrote (names, texts) is put on
// the page as text (textContent / text nodes), never as HTML.
'use strict';

// ---- DOM helpers -----------------------------------------------------------

// h builds an element. props: class, text, on{Event} (listeners), and plain
// attributes; children: nodes, strings (as text) and arrays of them.
function h(tag, props, ...children) {
  const ns = props && props.svg ? 'http://www.w3.org/2000/svg' : null;
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false || k === 'svg') continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') el.value = v;
    else if (k === 'href' && !/^(#|\/(?!\/))/.test(v)) throw new Error('refusing link ' + v);
    else el.setAttribute(k, v === true ? '' : String(v));
    if (k === 'href') el.setAttribute('href', v);
  }
  append(el, children);
  return el;
}
function append(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
  return el;
}
const $ = (sel, root) => (root || document).querySelector(sel);
const main = () => document.getElementById('main');

// ---- the node's API --------------------------------------------------------

class APIError extends Error {
  constructor(status, code, message, field) { super(message); this.status = status; this.code = code; this.field = field; }
}
async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path.startsWith('/ui/') ? path : '/api' + path, opts);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) throw new APIError(res.status, data && data.code, (data && data.error) || res.statusText, data && data.field);
  return data;
}
// sseReader returns a function that takes a server-sent event stream's
// text as it comes and calls fn(type, data) for each whole event (data is
// JSON). What fn throws, the function throws.
function sseReader(fn) {
  let buf = '';
  return text => {
    buf += text;
    for (let i; (i = buf.indexOf('\n\n')) >= 0;) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let type = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) type = line.slice(6).trim();
        else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(5).replace(/^ /, '');
      }
      if (data) fn(type, JSON.parse(data));
    }
  };
}
// upload posts blob, calling onProgress(sent, total) as it goes up. With
// onEvent, the node's answer is a stream of its progress (the API's
// progress events, internal/api/progress.go): onEvent(type, data) is called
// with each, and the upload resolves with the result event's data.
async function upload(path, blob, type, onProgress, timeoutMs, onEvent) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    if (timeoutMs) xhr.timeout = timeoutMs;
    xhr.setRequestHeader('Content-Type', type || 'application/octet-stream');
    if (onProgress) xhr.upload.addEventListener('progress', e => { if (e.lengthComputable) onProgress(e.loaded, e.total); });
    let result = null, failure = null, seen = 0;
    const feed = onEvent && sseReader((t, d) => {
      if (t === 'result') result = d;
      else if (t === 'error') failure = new APIError(d.status, d.code, d.error, d.field);
      else onEvent(t, d);
    });
    const more = () => { feed(xhr.responseText.slice(seen)); seen = xhr.responseText.length; };
    if (feed) {
      xhr.setRequestHeader('Accept', 'text/event-stream');
      xhr.addEventListener('progress', more);
    }
    xhr.addEventListener('load', () => {
      if (feed && xhr.status === 200) {
        more();
        if (failure || !result) reject(failure || new APIError(0, 'cut', 'the node stopped before it answered'));
        else resolve(result);
        return;
      }
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
      if (xhr.status === 200) resolve(data);
      else reject(new APIError(xhr.status, data && data.code, (data && data.error) || xhr.statusText));
    });
    xhr.addEventListener('error', () => reject(new APIError(0, 'network', 'the node did not answer')));
    // A request that never settles would leave its caller waiting for good
    // (the camera scanner sends one frame at a time).
    xhr.addEventListener('timeout', () => reject(new APIError(0, 'timeout', 'the node took too long to answer')));
    xhr.addEventListener('abort', () => reject(new APIError(0, 'aborted', 'the upload was cancelled')));
    xhr.send(blob);
  });
}

// ---- formatting ------------------------------------------------------------

// Formatters are made once: a list of 1,000 conversations formats 1,000 times.
const hourFmt = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat([], { day: 'numeric', month: 'short' });
function fmtTime(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const now = new Date();
  if (d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate()) return hourFmt.format(d);
  return dayFmt.format(d) + ' ' + hourFmt.format(d);
}
function fmtDate(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}
function fmtBytes(n) {
  if (n < 1024) return n + ' B';
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ' + units[i];
}
function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
}
function groupFP(fp) { return (fp.match(/.{1,4}/g) || []).join(' '); }
function initial(name) { const c = Array.from(name.trim())[0]; return c ? c.toUpperCase() : '?'; }
const STATE_TEXT = {
  queued: '◷ queued', carried: '✓ carried', delivered: '✓✓ delivered', expired: '⚠ expired — write it again', received: '',
};
function stateText(m) { return STATE_TEXT[m.status] !== undefined ? STATE_TEXT[m.status] : m.status; }
function contactTags(c) {
  const tags = [];
  if (c.state === 'request') tags.push(h('span', { class: 'tag request', text: 'wants to be your contact' }));
  if (c.state === 'pending') tags.push(h('span', { class: 'tag', text: 'waiting for them' }));
  if (c.rekey) tags.push(h('span', { class: 'tag request', text: 'new keys proposed' }));
  return tags;
}
function errorBox(err) { return h('p', { class: 'notice', role: 'alert', text: String(err.message || err) }); }

// ---- live updates ----------------------------------------------------------

const live = { source: null, listeners: new Set(), lastUnread: null };
function onLive(fn) { live.listeners.add(fn); return () => live.listeners.delete(fn); }
function startEvents() {
  if (live.source) return;
  // What is unread now is the baseline for notifications (a notification
  // is for what comes after): taken from the first page's own list, or
  // asked for once the first page is shown (route), so that the list is
  // not fetched twice while the first page loads.
  const es = new EventSource('/api/v1/events');
  live.source = es;
  // After a reconnect, changes made while the stream was down were never
  // announced: every page reads again, as after a change.
  let lost = false;
  es.addEventListener('open', () => {
    setBanner(null);
    if (lost) for (const fn of Array.from(live.listeners)) fn('change');
    lost = false;
  });
  es.addEventListener('error', () => { lost = true; setBanner('Reconnecting to your node…'); });
  for (const type of ['change', 'mesh']) {
    es.addEventListener(type, () => {
      for (const fn of Array.from(live.listeners)) fn(type);
      if (type === 'change') notifyNew();
    });
  }
}
let bannerText = null;
function setBanner(text) {
  const b = document.getElementById('banner');
  if (text === bannerText) return;
  bannerText = text;
  b.hidden = !text;
  b.textContent = text || '';
}

// Desktop notifications: off unless turned on in Settings; without the
// sender and text unless asked for as well.
const prefs = {
  get notify() { return localStorage.getItem('notify') === 'on'; },
  set notify(v) { localStorage.setItem('notify', v ? 'on' : 'off'); },
  get notifyText() { return localStorage.getItem('notifyText') === 'on'; },
  set notifyText(v) { localStorage.setItem('notifyText', v ? 'on' : 'off'); },
};
async function notifyNew() {
  // The count is kept also while notifications are off: turning them on
  // must not announce what came before.
  // The newest conversations and the unread count of all: a new message
  // puts its conversation first.
  let page;
  try { page = await api('GET', '/v1/conversations/page?limit=20'); } catch (e) { return; }
  const convs = page.conversations, unread = page.unread;
  const before = live.lastUnread;
  live.lastUnread = unread;
  if (!prefs.notify || !('Notification' in window) || Notification.permission !== 'granted') return;
  if (before === null || unread <= before || !document.hidden) return;
  const newest = convs.find(c => c.unread > 0 && c.last);
  const body = prefs.notifyText && newest ? newest.contact.name + ': ' + newest.last.text.slice(0, 140) : 'New message';
  new Notification('Grapevine', { body, tag: 'grapevine', silent: false });
}

// ---- router ----------------------------------------------------------------

let cleanup = [];
const routes = [
  [/^#?\/?$/, 'chats', pageChats],
  [/^#\/chat\/([a-z2-7]+)$/, 'chats', pageChat],
  [/^#\/group\/([0-9a-f]{64})$/, 'chats', pageGroup],
  [/^#\/channel\/([^/]+)$/, 'chats', (root, name) => pageRoom(root, 'channel', decodeURIComponent(name))],
  [/^#\/nearby$/, 'chats', root => pageRoom(root, 'nearby', 'nearby')],
  [/^#\/announce\/([^/]+)$/, 'chats', (root, name) => pageRoom(root, 'announce', decodeURIComponent(name))],
  [/^#\/contacts$/, 'contacts', pageContacts],
  [/^#\/contact\/([a-z2-7]+)$/, 'contacts', pageContact],
  [/^#\/verify\/([a-z2-7]+)$/, 'contacts', pageVerify],
  [/^#\/invite$/, 'contacts', pageInvite],
  [/^#\/add$/, 'contacts', pageAdd],
  [/^#\/mesh$/, 'mesh', pageMesh],
  [/^#\/bundles$/, 'bundles', pageBundles],
  [/^#\/settings$/, 'settings', pageSettings],
];
async function route() {
  for (const fn of cleanup) fn();
  cleanup = [];
  const hash = location.hash || '#/';
  for (const [re, nav, page] of routes) {
    const m = hash.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === nav);
    const root = h('div', { class: 'page', 'data-page': nav });
    main().replaceChildren(root);
    try {
      await page(root, ...m.slice(1));
    } catch (e) {
      root.replaceChildren(errorBox(e));
    }
    document.body.dataset.ready = hash;
    // For the tests' timing: when the first page had its data on screen,
    // in ms since the navigation started.
    if (!document.body.dataset.firstReadyMs) document.body.dataset.firstReadyMs = String(Math.round(performance.now()));
    if (live.lastUnread === null) {
      api('GET', '/v1/conversations/page?limit=1').then(p => { if (live.lastUnread === null) live.lastUnread = p.unread; }, () => {});
    }
    return;
  }
  location.hash = '#/';
}
function go(hash) { if (location.hash === hash) route(); else location.hash = hash; }
// keep calls fn now and again on every live change while the page is shown.
function keep(fn, types) { return keepFn(fn, types)(); }
// keepFn is keep without the first call: it returns the function that runs
// fn (one run at a time; a call during a run runs it once more after).
function keepFn(fn, types) {
  let busy = false, again = false, failures = 0, gone = false;
  const run = async () => {
    if (gone) return;
    if (busy) { again = true; return; }
    busy = true;
    try {
      await fn();
      failures = 0;
    } catch (e) {
      // A read that failed (the node busy, a request cut) is tried again:
      // no other change may come to trigger it, and the page would stay
      // as it was.
      console.warn(e);
      if (++failures <= 6) setTimeout(run, 500 * failures);
    }
    busy = false;
    if (again) { again = false; run(); }
  };
  cleanup.push(onLive(type => { if (!types || types.includes(type)) run(); }));
  cleanup.push(() => { gone = true; });
  return run;
}

// sendOnEnter makes Enter in a compose box send (Shift+Enter a new line;
// not while an input method composes).
function sendOnEnter(text, form) {
  text.addEventListener('keydown', e => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
}

// ---- pages: conversations --------------------------------------------------

async function pageChats(root) {
  const list = h('ul', { class: 'list', id: 'conversations' });
  const empty = h('div', { class: 'card', hidden: true },
    h('p', { text: 'No contacts yet. Show your invite to someone, or scan theirs.' }),
    h('div', { class: 'row' }, h('a', { class: 'button', href: '#/invite', text: 'Show my invite' }),
      h('a', { class: 'button secondary', href: '#/add', text: 'Add a contact' })));
  // Long lists come a page at a time: the first 100, then more on demand;
  // a change fetches again what is shown.
  const PAGE = 100;
  let shown = PAGE, convs = [], total = 0;
  const more = h('button', { class: 'secondary', id: 'more-chats', hidden: true });
  // Private groups (made with `grapevine groups`) above the chats.
  const groupsHead = h('h2', { text: 'Groups', hidden: true });
  const groupList = h('ul', { class: 'list', id: 'groups', hidden: true });
  const invitations = h('ul', { class: 'list', id: 'group-invitations', hidden: true });
  const groupOut = h('div');
  const newName = h('input', { type: 'text', id: 'new-group', maxlength: 64, placeholder: 'Name of the group', 'aria-label': 'Name of the group' });
  const create = h('button', { id: 'create-group', text: 'Create' });
  const createForm = h('form', { class: 'row' }, newName, create);
  createForm.addEventListener('submit', async e => {
    e.preventDefault();
    if (!newName.value.trim()) return;
    create.disabled = true;
    try {
      const g = await api('POST', '/v1/groups', { name: newName.value });
      go('#/group/' + g.id);
    } catch (err) {
      groupOut.replaceChildren(errorBox(err));
    } finally {
      create.disabled = false;
    }
  });
  function invitationRow(inv) {
    const join = h('button', { 'data-action': 'join', text: 'Join' });
    join.addEventListener('click', async () => {
      join.disabled = true;
      try {
        await api('POST', '/v1/groups/join', { group: inv.room });
        join.replaceWith(h('span', { class: 'muted small', text: 'Asked to join: the group appears once ' + inv.from + '’s node adds you' }));
      } catch (err) {
        groupOut.replaceChildren(errorBox(err));
        join.disabled = false;
      }
    });
    return h('li', { 'data-invitation': inv.room }, h('span', { class: 'row' },
      h('span', { class: 'avatar', 'aria-hidden': 'true', text: '#' }),
      h('span', { class: 'name', text: inv.name }), h('span', { class: 'muted small', text: 'invited by ' + inv.from }), join));
  }
  const loadGroups = keepFn(async () => {
    const [gs, invs] = await Promise.all([api('GET', '/v1/groups'), api('GET', '/v1/groups/invitations')]);
    groupsHead.hidden = groupList.hidden = gs.length === 0 && invs.length === 0;
    groupList.replaceChildren(...gs.map(groupRow));
    invitations.hidden = invs.length === 0;
    const joining = new Set([...invitations.querySelectorAll('li')].filter(li => !li.querySelector('button')).map(li => li.dataset.invitation));
    invitations.replaceChildren(...invs.map(inv => joining.has(inv.room) ? invitations.querySelector('[data-invitation="' + inv.room + '"]') : invitationRow(inv)));
  }, ['change']);
  function draw() {
    const t0 = performance.now();
    list.replaceChildren(...convs.map(convRow));
    more.hidden = total <= convs.length;
    more.textContent = 'Show more (' + (total - convs.length) + ')';
    root.dataset.renderMs = String(Math.round(performance.now() - t0));
  }
  const load = keepFn(async () => {
    const t0 = performance.now();
    const page = await api('GET', '/v1/conversations/page?limit=' + shown);
    root.dataset.fetchMs = String(Math.round(performance.now() - t0));
    if (live.lastUnread === null) live.lastUnread = page.unread;
    convs = page.conversations;
    total = page.total;
    empty.hidden = total > 0;
    draw();
    root.dataset.count = String(total);
  }, ['change']);
  more.addEventListener('click', () => { shown += PAGE; load(); });
  const newGroup = h('details', { class: 'new-group' }, h('summary', { text: 'New group' }),
    h('p', { class: 'muted small', text: 'You are its admin: invite contacts from its page; each joins on their own device.' }), createForm);
  const rooms = roomsSection();
  append(root, h('h1', { text: 'Chats' }), groupsHead, invitations, groupList, groupOut, empty, list, h('p', {}, more), newGroup, rooms.el);
  await Promise.all([load(), loadGroups(), rooms.load()]);
}

// ---- public rooms: channels, Nearby, announcements ---------------------------

// shortKey is the start of a poster's key as the CLI shows it (12 hex
// digits), in groups of four.
function shortKey(k) { return groupFP(k.slice(0, 12)); }
function roomHref(kind, name) {
  if (kind === 'nearby') return '#/nearby';
  return '#/' + kind + '/' + encodeURIComponent(kind === 'channel' ? name.replace(/^#/, '') : name);
}

// roomsSection is the chats page's list of public rooms (Nearby, the
// channels joined, the announcement channels owned and followed) with the
// forms that join a channel, follow an announcement channel or make one.
function roomsSection() {
  const list = h('ul', { class: 'list', id: 'rooms' });
  const out = h('div', { id: 'rooms-out' });
  const busy = (btn, text) => { btn.disabled = true; out.replaceChildren(h('p', { class: 'muted small', text })); };
  // Join a channel by name, with its password if it has one.
  const name = h('input', { type: 'text', id: 'join-channel', maxlength: 64, placeholder: '#name', 'aria-label': 'Channel name', autocomplete: 'off' });
  const pass = h('input', { type: 'password', id: 'join-password', placeholder: 'Password (if it has one)', 'aria-label': 'Channel password', autocomplete: 'off' });
  const join = h('button', { id: 'join-channel-button', text: 'Join' });
  const joinForm = h('form', { class: 'row' }, name, pass, join);
  joinForm.addEventListener('submit', async e => {
    e.preventDefault();
    if (!name.value.trim()) return;
    busy(join, 'Joining: your node derives the channel’s keys from its name and password…');
    try {
      const ch = await api('POST', '/v1/channels/join', { name: name.value.trim(), password: pass.value });
      go(roomHref('channel', ch.name));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    } finally {
      join.disabled = false;
    }
  });
  // Follow an announcement channel by its owner key; make one of mine.
  const owner = h('input', { type: 'text', id: 'follow-owner', maxlength: 64, placeholder: 'Owner key (64 hex digits)', 'aria-label': 'Owner key', autocomplete: 'off' });
  const local = h('input', { type: 'text', id: 'follow-name', maxlength: 64, placeholder: 'A name for it', 'aria-label': 'Name to show it under' });
  const follow = h('button', { id: 'follow-button', class: 'secondary', text: 'Follow' });
  const followForm = h('form', { class: 'row' }, owner, local, follow);
  followForm.addEventListener('submit', async e => {
    e.preventDefault();
    if (!owner.value.trim() || !local.value.trim()) return;
    busy(follow, 'Following…');
    try {
      await api('POST', '/v1/announce/follow', { owner: owner.value.trim(), name: local.value.trim() });
      go(roomHref('announce', local.value.trim()));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    } finally {
      follow.disabled = false;
    }
  });
  const mineName = h('input', { type: 'text', id: 'new-announce', maxlength: 64, placeholder: 'Name of your announcement channel', 'aria-label': 'Name of your announcement channel' });
  const make = h('button', { id: 'create-announce', class: 'secondary', text: 'Create' });
  const makeForm = h('form', { class: 'row' }, mineName, make);
  makeForm.addEventListener('submit', async e => {
    e.preventDefault();
    if (!mineName.value.trim()) return;
    busy(make, 'Creating…');
    try {
      const a = await api('POST', '/v1/announce/create', { name: mineName.value.trim() });
      go(roomHref('announce', a.name));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    } finally {
      make.disabled = false;
    }
  });
  const forms = h('details', { class: 'new-room', id: 'new-room' }, h('summary', { text: 'Join a channel or follow announcements' }),
    h('p', { class: 'muted small', text: 'Anyone who knows a channel’s name (and password) can read it and post. You post under a pseudonym of that channel, new each day, never your name. A wrong password joins a different channel, whose posts are not these: nothing can tell you it is wrong.' }),
    joinForm,
    h('p', { class: 'muted small', text: 'Announcements: only the owner and the delegates they sign can post; everyone reads. Follow one with the owner key its owner shares.' }),
    followForm, makeForm);
  const load = async () => {
    const [cs, as, latest] = await Promise.all([api('GET', '/v1/channels'), api('GET', '/v1/announce'), api('GET', '/v1/channels/latest')]);
    const rooms = cs.map(c => c.name === 'nearby'
      ? { kind: 'nearby', name: 'nearby', label: 'Nearby', note: 'everyone a few hops away', ref: 'nearby' }
      : { kind: 'channel', name: c.name, label: c.name, note: 'channel', ref: c.name });
    for (const a of as) rooms.push({ kind: 'announce', name: a.name, label: a.name, note: a.mine ? 'your announcements' : 'announcements', ref: 'announce:' + a.name });
    const seen = new Set();
    const unique = rooms.filter(r => { const k = r.kind + r.name; if (seen.has(k)) return false; seen.add(k); return true; });
    const last = new Map(latest.map(l => [l.room, l.last]));
    list.replaceChildren(...unique.map(r => roomRow(r, last.get(r.ref))));
  };
  const el = h('section', { id: 'rooms-section' }, h('h2', { text: 'Channels' }), list, out, forms);
  return { el, load: keepFn(load, ['change']) };
}
function roomRow(r, last) {
  const preview = last ? (last.poster === 'me' ? 'You' : shortKey(last.poster)) + ': ' + last.text.slice(0, 200) : 'No posts yet';
  const avatar = r.kind === 'nearby' ? '◎' : r.kind === 'announce' ? '!' : '#';
  return h('li', { 'data-room': r.ref },
    h('a', { href: roomHref(r.kind, r.name) },
      h('span', { class: 'avatar', 'aria-hidden': 'true', text: avatar }),
      h('span', { class: 'conv-body' },
        h('span', { class: 'conv-top' },
          h('span', { class: 'name', text: r.label }),
          h('span', { class: 'muted small', text: last ? fmtTime(last.time) : '' })),
        h('span', { class: 'row' },
          h('span', { class: 'conv-last', text: preview }),
          h('span', { class: 'muted small', text: r.note })))));
}

// pageRoom shows a public room's posts with their posters' pseudonyms,
// lets the reader mute or block a poster, and posts to it (a stamp first:
// proof of work, about a second, shown while it runs).
async function pageRoom(root, kind, name) {
  let ref = kind === 'nearby' ? 'nearby' : kind === 'announce' ? 'announce:' + name : '#' + name.replace(/^#/, '').toLowerCase();
  let info = null, anns = [];
  if (kind === 'announce') {
    anns = (await api('GET', '/v1/announce')).filter(a => a.name === name);
    if (!anns.length) throw new Error('You neither own nor follow an announcement channel named “' + name + '”. Follow one from Chats with its owner key.');
  } else {
    const cs = await api('GET', '/v1/channels');
    info = cs.find(c => c.name === ref);
    if (!info) throw new Error('You are not in ' + ref + ': join it from Chats (with its password, if it has one).');
  }
  const mine = anns.some(a => a.mine);
  const owners = new Set(anns.map(a => a.owner));
  const q = '?channel=' + encodeURIComponent(ref);
  const title = kind === 'nearby' ? 'Nearby' : kind === 'announce' ? name : ref;
  const avatar = kind === 'nearby' ? '◎' : kind === 'announce' ? '!' : '#';
  const head = h('div', { class: 'chat-head' },
    h('a', { href: '#/', class: 'button secondary', 'aria-label': 'Back to chats', text: '←' }),
    h('span', { class: 'avatar', 'aria-hidden': 'true', text: avatar }), h('span', { class: 'name', text: title }));
  let about;
  if (kind === 'nearby') {
    about = 'Everyone a few hops from you, whoever they are: posts travel 2 hops and expire within an hour. You post as ' + shortKey(info.pseudonym) + ' today (a pseudonym that changes daily).';
  } else if (kind === 'channel') {
    about = 'Anyone who knows this name (and password) reads and posts here. You post as ' + shortKey(info.pseudonym) + ' today: a pseudonym of this channel only, new each day.';
  } else if (mine) {
    about = 'Your announcement channel: only you and the delegates you sign can post; everyone who follows it reads. Let someone post too with `grapevine announce delegate` on the command line.';
  } else {
    about = 'Announcements: only the owner and the delegates they sign can post; every relay checks the signature before carrying a post.';
  }
  const notices = h('div', { class: 'notices' });
  const manage = h('details', { class: 'group-manage', id: 'room-manage' }, h('summary', { text: 'About this room' }),
    h('p', { class: 'muted small', id: 'room-about', text: about }));
  if (kind === 'announce') {
    for (const a of anns) {
      append(manage, h('p', { class: 'small', text: a.mine ? 'Followers need its owner key:' : 'Owner key:' }),
        h('div', { class: 'link', 'data-owner': a.owner, text: a.owner }));
    }
  }
  if (kind === 'channel') {
    const leave = h('button', { class: 'secondary', id: 'room-leave', text: 'Leave the channel' });
    leave.addEventListener('click', async () => {
      try { await api('POST', '/v1/channels/leave', { name: ref }); go('#/'); } catch (err) { notices.replaceChildren(errorBox(err)); }
    });
    append(manage, h('p', { class: 'muted small', text: 'Leaving stops your node reading it; posts already here go when they expire.' }), h('div', { class: 'row' }, leave));
  }
  const list = h('div', { class: 'messages', id: 'messages', 'aria-live': 'polite' });
  const canPost = kind !== 'announce' || mine;
  const text = h('textarea', { id: 'compose', rows: 1, placeholder: kind === 'nearby' ? 'Write to everyone nearby' : 'Write to ' + title, maxlength: 16384, 'aria-label': 'Post' });
  const send = h('button', { id: 'send', text: 'Post' });
  const form = h('form', { class: 'sendbox', hidden: !canPost }, text, send);
  const progress = h('p', { class: 'muted small', id: 'stamping', 'aria-live': 'polite' });
  const readOnly = canPost ? null : h('p', { class: 'muted small', text: 'Only the owner and their delegates post here.' });
  append(root, h('div', { class: 'chat' }, head, manage, notices, list, progress, readOnly, form));

  const posterLabel = p => {
    if (kind === 'announce') return owners.has(p.poster) ? 'owner' : 'delegate ' + shortKey(p.poster);
    return shortKey(p.poster);
  };
  const setMode = async (poster, mode, label) => {
    try {
      await api('POST', '/v1/channels/mute', { poster, mode });
    } catch (err) {
      notices.replaceChildren(errorBox(err));
      return;
    }
    if (mode === 'unmute') {
      notices.replaceChildren(h('p', { class: 'muted small', text: label + '’s posts are shown again.' }));
    } else {
      const undo = h('button', { class: 'secondary', 'data-action': 'unmute', text: 'Undo' });
      undo.addEventListener('click', () => setMode(poster, 'unmute', label));
      notices.replaceChildren(h('p', { class: 'muted small' }, mode === 'mute'
        ? 'Muted ' + label + ': their posts are hidden here; your node still carries them for others. '
        : 'Blocked ' + label + ': their posts are hidden and your node no longer carries them. ', undo));
    }
    refresh();
  };
  const byID = new Map();
  function postEl(p) {
    const out = p.poster === 'me';
    const label = out ? '' : posterLabel(p);
    const act = (word, mode) => {
      const b = h('button', { class: 'secondary', 'data-action': mode, text: word });
      b.addEventListener('click', () => { b.disabled = true; setMode(p.poster, mode, label); });
      return b;
    };
    const until = kind === 'nearby' ? ' · until ' + fmtTime(p.expires) : '';
    return h('div', { class: 'msg ' + (out ? 'out' : 'in'), 'data-id': p.id, 'data-poster': p.poster },
      out ? null : h('div', { class: 'sender small', title: p.poster, text: label }),
      h('div', { class: 'text', dir: 'auto', text: p.text }),
      h('div', { class: 'meta' }, fmtTime(p.time) + until,
        out ? null : h('span', { class: 'post-actions' }, act('Mute', 'mute'), act('Block', 'block'))));
  }
  async function refresh() {
    const posts = (await api('GET', '/v1/channels/posts' + q)).slice(-200);
    const keepIDs = new Set(posts.map(p => p.id));
    for (const [id, el] of byID) if (!keepIDs.has(id)) { el.remove(); byID.delete(id); }
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    let prev = null;
    for (const p of posts) {
      let el = byID.get(p.id);
      if (!el) { el = postEl(p); byID.set(p.id, el); }
      if (prev ? prev.nextSibling !== el : list.firstChild !== el) {
        if (prev) prev.after(el); else list.prepend(el);
      }
      prev = el;
    }
    if (atBottom || root.dataset.loaded !== '1') list.scrollTop = list.scrollHeight;
    root.dataset.loaded = '1';
    root.dataset.count = String(byID.size);
  }
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const t = text.value;
    if (!t.trim()) return;
    send.disabled = true;
    const t0 = performance.now();
    const secs = () => ((performance.now() - t0) / 1000).toFixed(1) + ' s';
    const tick = () => { progress.textContent = 'Stamping your post: ' + secs() + ' (proof of work that relays check, about a second)…'; };
    tick();
    const timer = setInterval(tick, 100);
    try {
      const path = kind === 'nearby' ? '/v1/nearby/post' : kind === 'announce' ? '/v1/announce/post' : '/v1/channels/post';
      const body = kind === 'nearby' ? { text: t } : kind === 'announce' ? { name, text: t } : { channel: ref, text: t };
      await api('POST', path, body);
      clearInterval(timer);
      progress.textContent = 'Posted: stamped in ' + secs() + ': your node offers it to every neighbour it links to.';
      text.value = '';
      await refresh();
      list.scrollTop = list.scrollHeight;
    } catch (err) {
      clearInterval(timer);
      progress.textContent = '';
      notices.replaceChildren(errorBox(err));
    } finally {
      send.disabled = false;
      text.focus();
    }
  });
  sendOnEnter(text, form);
  await keep(refresh, ['change']);
  if (canPost) text.focus();
}
// previewText is a message in a list: its text, or what its file is.
function previewText(m) {
  if (m.text || !m.attachment) return m.text.slice(0, 200);
  const t = m.attachment.media_type;
  return (AUDIO_TYPES.has(t) ? '🎤 Voice note' : PHOTO_TYPES.has(t) ? '🖼 Photo' : '📎 ' + m.attachment.name).slice(0, 200);
}
function groupRow(g) {
  const last = g.last;
  const preview = last ? (last.direction === 'out' ? 'You' : last.sender) + ': ' + previewText(last) : 'No posts yet';
  return h('li', { 'data-group': g.id },
    h('a', { href: '#/group/' + g.id },
      h('span', { class: 'avatar', 'aria-hidden': 'true', text: '#' }),
      h('span', { class: 'conv-body' },
        h('span', { class: 'conv-top' },
          h('span', { class: 'name', text: g.name }),
          h('span', { class: 'muted small', text: last ? fmtTime(last.time) : '' })),
        h('span', { class: 'row' },
          h('span', { class: 'conv-last', text: preview }),
          h('span', { class: 'muted small', text: g.members.length + ' members' })))));
}

// ---- pages: a group --------------------------------------------------------

// pageGroup shows a group's posts with their writers and posts to it; the
// group itself is made and changed with `grapevine groups`.
async function pageGroup(root, id) {
  const q = '?group=' + encodeURIComponent(id);
  const title = h('span', { class: 'name' });
  const members = h('span', { class: 'muted small', id: 'group-members' });
  const head = h('div', { class: 'chat-head' },
    h('a', { href: '#/', class: 'button secondary', 'aria-label': 'Back to chats', text: '←' }),
    h('span', { class: 'avatar', 'aria-hidden': 'true', text: '#' }), title, members);
  const notices = h('div', { class: 'notices' });
  // An admin invites active contacts who are not in the group yet.
  const pick = h('select', { id: 'invite-contact', 'aria-label': 'Contact to invite' });
  const invite = h('button', { id: 'invite', class: 'secondary', text: 'Invite' });
  const inviteRow = h('form', { class: 'row', hidden: true }, pick, invite);
  inviteRow.addEventListener('submit', async e => {
    e.preventDefault();
    if (!pick.value) return;
    invite.disabled = true;
    try {
      await api('POST', '/v1/groups/invite', { group: id, contact: pick.value });
      notices.replaceChildren(h('p', { class: 'muted small', text: 'Invited ' + pick.selectedOptions[0].textContent + ': they join from their chats, then your node adds them.' }));
    } catch (err) {
      notices.replaceChildren(errorBox(err));
    } finally {
      invite.disabled = false;
    }
  });
  const list = h('div', { class: 'messages', id: 'messages', 'aria-live': 'polite' });
  const text = h('textarea', { id: 'compose', rows: 1, placeholder: 'Write to the group', maxlength: 16384, 'aria-label': 'Post' });
  const send = h('button', { id: 'send', text: 'Send' });
  const form = h('form', { class: 'sendbox' }, text, send);
  const tools = fileTools('group=' + encodeURIComponent(id), text, notices, m => { place(m); list.scrollTop = list.scrollHeight; });
  // Members, and for an admin the changes: each makes a new epoch whose keys
  // go to every member (a removed one gets none).
  const memberList = h('ul', { class: 'list', id: 'group-member-list' });
  const renameInput = h('input', { type: 'text', id: 'group-rename', maxlength: 64, 'aria-label': 'New name of the group' });
  const renameForm = h('form', { class: 'row', hidden: true }, renameInput, h('button', { class: 'secondary', text: 'Rename' }));
  const change = async (path, body, done) => {
    try {
      await api('POST', '/v1/groups/' + path, Object.assign({ group: id }, body));
      notices.replaceChildren(h('p', { class: 'muted small', text: done }));
      reload(); // what this page changed shows at once, event stream or not
    } catch (err) {
      notices.replaceChildren(errorBox(err));
    }
  };
  renameForm.addEventListener('submit', e => {
    e.preventDefault();
    if (renameInput.value.trim()) change('rename', { name: renameInput.value }, 'Renamed: every member sees the new name.');
  });
  const leave = h('button', { class: 'secondary', id: 'group-leave', text: 'Leave the group' });
  const leaveConfirm = h('div', { class: 'notice', hidden: true },
    h('p', { text: 'Leave? Your copy of the group and its posts are erased here at once; an admin who is your contact records it.' }),
    h('div', { class: 'row' }, h('button', { class: 'danger', id: 'group-leave-yes', text: 'Yes, leave' })));
  leave.addEventListener('click', () => { leaveConfirm.hidden = false; });
  leaveConfirm.querySelector('button').addEventListener('click', async () => {
    try { await api('POST', '/v1/groups/leave', { group: id }); go('#/'); } catch (err) { notices.replaceChildren(errorBox(err)); }
  });
  const manage = h('details', { class: 'group-manage', id: 'group-manage' }, h('summary', { text: 'Members and settings' }),
    memberList, renameForm, h('div', { class: 'row' }, leave), leaveConfirm);
  function memberRow(g, m) {
    const act = (label, action, fn) => {
      const b = h('button', { class: 'secondary', 'data-action': action, text: label });
      b.addEventListener('click', async () => { b.disabled = true; await fn(); b.disabled = false; });
      return b;
    };
    const mine = g.admin && m.name !== 'me';
    return h('li', { 'data-fp': m.fingerprint }, h('span', { class: 'row' },
      h('span', { class: 'name', text: m.name }), h('span', { class: 'muted small', text: m.admin ? 'admin' : 'member' }),
      mine && !m.admin ? act('Make admin', 'admin', () => change('admin', { contact: m.fingerprint }, m.name + ' is an admin now.')) : null,
      mine ? act('Remove', 'remove', () => change('remove', { contact: m.fingerprint }, 'Removed ' + m.name + ': the group has new keys, which ' + m.name + ' never gets.')) : null));
  }
  append(root, h('div', { class: 'chat' }, head, inviteRow, manage, notices, list, tools.status, tools.bar, form));
  const byID = new Map();
  function place(m) {
    const have = byID.get(m.id);
    if (have && have.dataset.file === fileKey(m)) return;
    const meta = h('div', { class: 'meta' }, fmtTime(m.time),
      m.earlier ? ' · written before the group\'s last change' : '');
    const el = h('div', { class: 'msg ' + m.direction, 'data-id': m.id, 'data-file': fileKey(m) },
      m.direction === 'in' ? h('div', { class: 'sender small', text: m.sender }) : null,
      m.attachment ? attachmentEl(m) : null,
      m.text || !m.attachment ? h('div', { class: 'text', dir: 'auto', text: m.text }) : null, meta);
    byID.set(m.id, el);
    if (have) have.replaceWith(el); else list.appendChild(el);
  }
  let shownName = null;
  async function refresh() {
    const [g, posts] = await Promise.all([api('GET', '/v1/groups/show' + q), api('GET', '/v1/groups/messages' + q)]);
    title.textContent = g.name;
    members.textContent = g.members.map(m => m.name + (m.admin ? ' (admin)' : '')).join(', ');
    memberList.replaceChildren(...g.members.map(m => memberRow(g, m)));
    renameForm.hidden = !g.admin;
    // The box follows the group's name only when that name changes: a
    // refresh (any change on the node) must not undo what is typed there.
    if (g.name !== shownName && document.activeElement !== renameInput) renameInput.value = g.name;
    shownName = g.name;
    if (g.admin) {
      const inGroup = new Set(g.members.map(m => m.fingerprint));
      const cs = (await api('GET', '/v1/contacts')).filter(c => c.state === 'active' && !inGroup.has(c.fingerprint));
      const chosen = pick.value;
      pick.replaceChildren(...cs.map(c => h('option', { value: c.fingerprint, text: c.name })));
      if (cs.some(c => c.fingerprint === chosen)) pick.value = chosen;
      inviteRow.hidden = cs.length === 0;
    } else {
      inviteRow.hidden = true;
    }
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    for (const m of posts.slice(-200)) place(m);
    if (atBottom || root.dataset.loaded !== '1') list.scrollTop = list.scrollHeight;
    root.dataset.loaded = '1';
    root.dataset.count = String(byID.size);
  }
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const t = text.value;
    if (!t.trim()) return;
    send.disabled = true;
    try {
      place(await api('POST', '/v1/groups/send', { group: id, text: t }));
      text.value = '';
      list.scrollTop = list.scrollHeight;
    } catch (err) {
      notices.append(errorBox(err));
    } finally {
      send.disabled = false;
      text.focus();
    }
  });
  sendOnEnter(text, form);
  const reload = keepFn(refresh, ['change']);
  await reload();
  text.focus();
}
function convRow(c) {
  const last = c.last;
  let preview = '';
  if (last) preview = (last.direction === 'out' ? 'You: ' : '') + previewText(last);
  else if (c.contact.state === 'request') preview = 'Wants to be your contact';
  else if (c.contact.state === 'pending') preview = 'Added — say hello';
  return h('li', { 'data-fp': c.contact.fingerprint },
    h('a', { href: '#/chat/' + c.contact.fingerprint },
      h('span', { class: 'avatar', 'aria-hidden': 'true', text: initial(c.contact.name) }),
      h('span', { class: 'conv-body' },
        h('span', { class: 'conv-top' },
          h('span', { class: 'name', text: c.contact.name }),
          h('span', { class: 'muted small', text: last ? fmtTime(last.time) : '' })),
        h('span', { class: 'row' },
          h('span', { class: 'conv-last', text: preview }), contactTags(c.contact))),
      c.unread > 0 ? h('span', { class: 'badge unread', text: String(c.unread), title: c.unread + ' unread' }) : null));
}

// ---- files, photos and voice notes ------------------------------------------

// Media types shown in the page; the node serves only these inline, and only
// when the content is what it says (internal/web/files.go).
const PHOTO_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif']);
const AUDIO_TYPES = new Set(['audio/webm', 'audio/ogg']);
function fileURL(id, download) { return '/ui/files/' + encodeURIComponent(id) + (download ? '?download=1' : ''); }
// fileKey changes whenever what a message's file shows changes, so that a
// page redraws it then and only then (an <img> or <audio> redrawn would load
// again).
function fileKey(m) {
  const a = m.attachment;
  return a ? [m.status, a.have, a.chunks, a.sources || 0, a.carried || 0, a.complete, a.kept || false, a.refused || ''].join('/') : '';
}
// fileState says honestly where a file is, and how far it has come (done
// of total, for the progress bar). One I sent to a contact is queued until
// a neighbour took one of its chunks, carried while chunks leave and their
// receipts come back (a chunk delivered was carried, if only in a bundle),
// delivered only once every chunk's receipt came back. A group's members
// send no receipts: of a post's file nothing more is known than that it
// was posted. One sent to me is receiving until every chunk is held and
// verified.
function fileState(m) {
  const a = m.attachment;
  const of = a.chunks === 1 ? ' chunk' : ' chunks';
  if (m.direction === 'out' && !m.status) {
    return { word: 'posted', text: a.chunks + of + ', carried until they expire (group members send no receipts)', done: a.chunks };
  }
  if (m.direction === 'out') {
    const carried = Math.min(a.chunks, Math.max(a.carried || 0, a.have));
    switch (m.status) {
      case 'delivered': return { word: 'delivered', text: a.chunks + ' of ' + a.chunks + of + ' delivered', done: a.chunks };
      case 'expired': return { word: 'expired', text: a.have + ' of ' + a.chunks + of + ' delivered before it expired', done: a.have };
    }
    if (!carried) return { word: 'queued', text: '0 of ' + a.chunks + of + ' carried: waiting for a neighbour or a bundle', done: 0 };
    return { word: 'carried', text: carried + ' of ' + a.chunks + of + ' carried, ' + a.have + ' delivered', done: carried };
  }
  if (a.refused) return { word: 'not fetched', text: a.refused, done: 0 };
  if (a.complete) return { word: 'complete', text: a.chunks + ' of ' + a.chunks + of, done: a.chunks };
  const from = a.sources ? ' from ' + a.sources + (a.sources === 1 ? ' carrier' : ' carriers') : '';
  return { word: 'receiving', text: a.have + ' of ' + a.chunks + of + from, done: a.have };
}
// attachmentEl shows a message's file: name, type, size, how far it has
// come; once a file sent to me is complete, a photo inline, a voice note in
// a player, anything else behind a Download button. A photo or voice note I
// sent shows at once, as it was sent (kept by my node: a photo re-encoded,
// without its metadata). Its name is text.
function attachmentEl(m) {
  const a = m.attachment;
  const st = fileState(m);
  const done = m.direction === 'in' && a.complete;
  const shown = done || (m.direction === 'out' && a.kept);
  const el = h('div', { class: 'attachment', 'data-file-state': st.word, 'data-media-type': a.media_type });
  if (shown && PHOTO_TYPES.has(a.media_type)) {
    append(el, h('a', { href: fileURL(m.id), target: '_blank', rel: 'noopener' },
      h('img', { class: 'photo', src: fileURL(m.id), alt: (m.direction === 'out' ? 'Photo sent: ' : 'Photo: ') + a.name, loading: 'lazy' })));
  } else if (shown && AUDIO_TYPES.has(a.media_type)) {
    append(el, audioEl(fileURL(m.id), a.name));
  }
  append(el, h('div', { class: 'file-head' },
    h('span', { class: 'file-icon', 'aria-hidden': 'true', text: AUDIO_TYPES.has(a.media_type) ? '🎤' : PHOTO_TYPES.has(a.media_type) ? '🖼' : '📎' }),
    h('span', { class: 'file-name name', text: a.name || 'file' }),
    h('span', { class: 'muted small', text: a.media_type + ' · ' + fmtBytes(a.size) })));
  if ((!done || a.refused) && st.word !== 'posted') {
    append(el, h('progress', { class: 'file-progress', max: Math.max(1, a.chunks), value: st.done,
      'aria-label': st.word + ': ' + st.text }));
  }
  append(el, h('div', { class: 'muted small file-status' }, h('span', { class: 'file-word', text: st.word }), ' · ' + st.text));
  if (done) {
    const dl = h('a', { class: 'button secondary small download', href: fileURL(m.id, true), download: a.name || 'file', text: 'Download' });
    append(el, dl);
  }
  return el;
}
// audioEl is a player. A recording from a browser carries no duration, and
// the player would say ∞: seeking far ahead once makes it read the whole
// file and learn it.
function audioEl(src, name) {
  const au = h('audio', { controls: true, preload: 'metadata', src, 'aria-label': 'Voice note ' + name });
  au.addEventListener('loadedmetadata', () => {
    au.dataset.loaded = '1';
    if (au.duration === Infinity) {
      const back = () => { au.removeEventListener('durationchange', back); au.currentTime = 0; };
      au.addEventListener('durationchange', back);
      au.currentTime = 1e101;
    }
  });
  au.addEventListener('error', () => { au.dataset.error = au.error ? String(au.error.code) : '1'; });
  return au;
}

// recordingType is what MediaRecorder makes here: Opus in WebM (Chromium)
// or in Ogg (Firefox).
function recordingType() {
  for (const t of ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm', 'audio/ogg']) {
    if (MediaRecorder.isTypeSupported(t)) return t;
  }
  return '';
}
function micError(e) {
  switch (e && e.name) {
    case 'NotAllowedError': case 'SecurityError':
      return 'The microphone was refused: allow it for this page in the browser’s site settings, then try again.';
    case 'NotFoundError': case 'OverconstrainedError':
      return 'No microphone found: connect one, or send a recording as a file.';
    case 'NotReadableError': case 'AbortError':
      return 'The microphone could not be opened (another program may be using it).';
    default:
      return 'The microphone could not be used: ' + (e && e.message || e);
  }
}
// fileTools is the compose area's file button, recorder and push-to-talk
// button, for a conversation (target 'to=FP') or a group ('group=ID').
// text is the compose box: what it holds goes with a file as its caption.
// sent(m) places the message sent.
function fileTools(target, text, notices, sent) {
  const status = h('div', { class: 'file-tools-status small', id: 'file-status', role: 'status', 'aria-live': 'polite' });
  const say = (msg, cls) => status.replaceChildren(msg ? h('span', { class: cls || 'muted', text: msg }) : '');
  const input = h('input', { type: 'file', id: 'file-input', multiple: true, hidden: true });
  const pick = h('button', { type: 'button', class: 'secondary icon', id: 'attach', title: 'Send a file or photo', 'aria-label': 'Send a file or photo', text: '📎' });
  const asFileBox = h('input', { type: 'checkbox', id: 'as-file' });
  const asFile = h('label', { class: 'row small as-file', for: 'as-file', title: 'A photo is re-encoded without its metadata (GPS position, camera, times) unless sent as a file' },
    asFileBox, h('span', { text: 'photos as files' }));
  const mic = h('button', { type: 'button', class: 'secondary icon', id: 'record', title: 'Record a voice note (click again to send)', 'aria-label': 'Record a voice note', text: '🎤' });
  const ptt = h('button', { type: 'button', class: 'secondary ptt', id: 'ptt', title: 'Hold to talk: release to send, slide away or press Escape to cancel', text: 'Hold to talk' });

  // The node's limits, asked once: a file over them is refused here, before
  // its bytes go up for nothing.
  let limits = null;
  async function tooLarge(blob, type, asFile) {
    if (!limits) {
      try { limits = await api('GET', '/ui/settings'); } catch (err) { return ''; } // the node says it then
    }
    const lim = !asFile && PHOTO_TYPES.has(type) ? limits.photo_limit : limits.file_limit;
    return blob.size > lim ? 'it is ' + fmtBytes(blob.size) + ', the limit is ' + fmtBytes(limits.file_limit) : '';
  }
  async function sendBlob(blob, name, type, opts) {
    const big = await tooLarge(blob, type, opts.asFile);
    if (big) {
      notices.append(errorBox(new Error(name + ' was not sent: ' + big)));
      return false;
    }
    const q = '?' + target + '&name=' + encodeURIComponent(name) + '&type=' + encodeURIComponent(type || '') +
      (opts.asFile ? '&as_file=1' : '') + (opts.caption ? '&caption=' + encodeURIComponent(opts.caption) : '');
    const bar = h('progress', { max: Math.max(1, blob.size), value: 0 });
    status.replaceChildren(h('span', { class: 'muted', text: 'Sending ' + name + ' (' + fmtBytes(blob.size) + ')… ' }), bar);
    try {
      const m = await upload('/ui/files/send' + q, blob, 'application/octet-stream', (n, t) => { bar.max = t; bar.value = n; });
      say('');
      sent(m);
      return true;
    } catch (err) {
      say('');
      notices.append(errorBox(new Error(name + ' was not sent: ' + err.message)));
      return false;
    }
  }
  pick.addEventListener('click', () => input.click());
  input.addEventListener('change', async () => {
    const files = Array.from(input.files);
    input.value = '';
    let caption = text.value.trim() ? text.value : '';
    for (const f of files) {
      if (await sendBlob(f, f.name, f.type, { asFile: asFileBox.checked, caption }) && caption) { text.value = ''; caption = ''; }
    }
  });

  // One recording at a time, by the record button or push-to-talk.
  let rec = null;
  const elapsed = () => {
    const s = Math.floor((performance.now() - rec.t0) / 1000);
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  };
  const showRec = () => {
    if (!rec || !rec.mr) return;
    const how = rec.cancelArmed ? 'release to cancel' : rec.mode === 'ptt' ? 'release to send, slide away or Esc to cancel' : 'click 🎤 again to send, Esc to cancel';
    status.replaceChildren(h('span', { class: 'recording', id: 'recording', text: '● recording ' + elapsed() }), h('span', { class: 'muted', text: ' — ' + how }));
  };
  async function startRec(mode, btn) {
    if (rec) return;
    rec = { mode, btn, chunks: [], stop: null };
    const r = rec;
    try {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || typeof MediaRecorder === 'undefined') {
        throw Object.assign(new Error('this browser cannot record here (recording needs localhost, or the LAN link over https)'), { name: 'Unsupported' });
      }
      r.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      rec = null;
      say(micError(e), 'mismatch');
      return;
    }
    if (rec !== r) { r.stream.getTracks().forEach(t => t.stop()); return; } // cancelled while asking
    const type = recordingType();
    r.mr = new MediaRecorder(r.stream, type ? { mimeType: type } : {});
    r.mr.addEventListener('dataavailable', e => { if (e.data && e.data.size) r.chunks.push(e.data); });
    r.mr.addEventListener('stop', () => finish(r));
    r.t0 = performance.now();
    r.mr.start(250);
    btn.classList.add('recording-now');
    btn.setAttribute('aria-pressed', 'true');
    r.timer = setInterval(showRec, 250);
    showRec();
    if (r.stop) stopRec(r.stop); // released while the microphone was opening
  }
  function stopRec(how) {
    if (!rec) return;
    rec.stop = how;
    if (!rec.mr) { if (how === 'cancel') rec = null; return; }
    if (rec.mr.state !== 'inactive') rec.mr.stop();
  }
  async function finish(r) {
    clearInterval(r.timer);
    r.stream.getTracks().forEach(t => t.stop());
    r.btn.classList.remove('recording-now');
    r.btn.removeAttribute('aria-pressed');
    rec = null;
    const ms = performance.now() - r.t0;
    if (r.stop === 'cancel') { say('Recording cancelled: nothing was sent.'); return; }
    if (ms < 400) { say('Too short: hold the button while you talk.'); return; }
    const type = (r.mr.mimeType || 'audio/webm').split(';')[0];
    const ext = type === 'audio/ogg' ? '.ogg' : '.webm';
    const stamp = new Date().toISOString().replace(/\..*$/, '').replace(/[-:]/g, '').replace('T', '-');
    await sendBlob(new Blob(r.chunks, { type }), 'voice-note-' + stamp + ext, type, { caption: '' });
  }
  mic.addEventListener('click', () => { if (rec && rec.mode === 'mic') stopRec('send'); else if (!rec) startRec('mic', mic); });

  // Push-to-talk: records while held (mouse, touch, pen; Space while
  // focused), sends on release; sliding well away from the button, or
  // Escape, cancels.
  let origin = null;
  ptt.addEventListener('pointerdown', e => {
    if (e.button !== 0 || rec) return;
    e.preventDefault();
    try { ptt.setPointerCapture(e.pointerId); } catch (err) { /* a synthetic pointer */ }
    origin = { x: e.clientX, y: e.clientY };
    startRec('ptt', ptt);
  });
  ptt.addEventListener('pointermove', e => {
    if (!origin || !rec) return;
    const far = Math.hypot(e.clientX - origin.x, e.clientY - origin.y) > 80;
    if (far !== !!rec.cancelArmed) { rec.cancelArmed = far; showRec(); }
  });
  const release = () => {
    if (!origin) return;
    origin = null;
    if (rec && rec.mode === 'ptt') stopRec(rec.cancelArmed ? 'cancel' : 'send');
  };
  ptt.addEventListener('pointerup', release);
  ptt.addEventListener('pointercancel', () => { origin = null; if (rec && rec.mode === 'ptt') stopRec('cancel'); });
  ptt.addEventListener('contextmenu', e => e.preventDefault()); // a long press on a phone
  ptt.addEventListener('keydown', e => {
    if (e.key === ' ' && !e.repeat && !rec) { e.preventDefault(); startRec('ptt', ptt); }
  });
  ptt.addEventListener('keyup', e => {
    if (e.key === ' ' && rec && rec.mode === 'ptt') { e.preventDefault(); stopRec('send'); }
  });
  ptt.addEventListener('click', e => e.preventDefault()); // Space's click would start nothing new
  const onKey = e => { if (e.key === 'Escape' && rec) { e.preventDefault(); stopRec('cancel'); } };
  document.addEventListener('keydown', onKey);
  cleanup.push(() => { document.removeEventListener('keydown', onKey); if (rec) stopRec('cancel'); });

  const bar = h('div', { class: 'file-tools row' }, pick, input, mic, ptt, asFile);
  return { bar, status, setDisabled(d) { for (const b of [pick, mic, ptt]) b.disabled = d; } };
}

// ---- pages: chat -----------------------------------------------------------

async function contactByFP(fp) {
  const page = await api('GET', '/v1/messages/page?limit=1&contact=' + encodeURIComponent(fp));
  return page.contact;
}

async function pageChat(root, fp) {
  let contact = await contactByFP(fp);
  const byID = new Map();
  let oldest = null;
  const title = h('span', { class: 'name', text: contact.name });
  const head = h('div', { class: 'chat-head' },
    h('a', { href: '#/', class: 'button secondary', 'aria-label': 'Back to chats', text: '←' }),
    h('span', { class: 'avatar', 'aria-hidden': 'true', text: initial(contact.name) }), title,
    h('a', { href: '#/contact/' + fp, class: 'button secondary', text: 'Details' }));
  const notices = h('div', { class: 'notices' });
  const older = h('button', { class: 'secondary', hidden: true, text: 'Load older messages' });
  const list = h('div', { class: 'messages', id: 'messages', 'aria-live': 'polite' }, older);
  const text = h('textarea', { id: 'compose', rows: 1, placeholder: 'Write a message', maxlength: 16384, 'aria-label': 'Message' });
  const send = h('button', { id: 'send', text: 'Send' });
  const form = h('form', { class: 'sendbox' }, text, send);
  const tools = fileTools('to=' + encodeURIComponent(fp), text, notices, m => { place(m, false); list.scrollTop = list.scrollHeight; });
  append(root, h('div', { class: 'chat' }, head, notices, list, tools.status, tools.bar, form));

  let carriers = {};
  function labelOf(m) {
    const n = carriers[m.id] || 0;
    return m.status === 'carried' && n ? '✓ carried by ' + n + (n === 1 ? ' neighbour' : ' neighbours') : stateText(m);
  }
  function msgEl(m) {
    const label = labelOf(m);
    const meta = h('div', { class: 'meta' }, fmtTime(m.time), ' ',
      h('span', { class: 'state state-' + m.status, 'data-state': m.status, text: label }));
    return h('div', { class: 'msg ' + m.direction, 'data-id': m.id, 'data-state': m.status, 'data-label': label, 'data-file': fileKey(m) },
      m.attachment ? attachmentEl(m) : null,
      m.text || !m.attachment ? h('div', { class: 'text', dir: 'auto', text: m.text }) : null, meta);
  }
  function place(m, atTop) {
    const have = byID.get(m.id);
    if (have) {
      if (have.dataset.state !== m.status || have.dataset.label !== labelOf(m) || have.dataset.file !== fileKey(m)) {
        const el = msgEl(m);
        have.replaceWith(el);
        byID.set(m.id, el);
      }
      return;
    }
    const el = msgEl(m);
    byID.set(m.id, el);
    if (atTop) older.after(el); else list.appendChild(el);
  }
  async function loadOlder() {
    const t0 = performance.now();
    const page = await api('GET', '/v1/messages/page?contact=' + encodeURIComponent(fp) + '&limit=50&before=' + encodeURIComponent(oldest || ''));
    const h0 = list.scrollHeight;
    for (const m of page.messages.slice().reverse()) place(m, true);
    if (page.messages.length) oldest = page.messages[0].id;
    older.hidden = !page.more;
    list.scrollTop += list.scrollHeight - h0;
    root.dataset.olderMs = String(Math.round(performance.now() - t0));
  }
  older.addEventListener('click', loadOlder);

  async function refresh() {
    const page = await api('GET', '/v1/messages/page?contact=' + encodeURIComponent(fp) + '&limit=50');
    contact = page.contact;
    carriers = Object.assign(carriers, page.carriers || {});
    title.textContent = contact.name;
    notices.replaceChildren();
    if (contact.state === 'request') notices.append(requestNotice(contact, () => refresh()));
    if (contact.rekey) notices.append(rekeyNotice(contact, () => refresh()));
    if (contact.state === 'pending') notices.append(h('p', { class: 'muted small', text: 'They have not answered yet. What you write waits for them, and is delivered once they accept.' }));
    if (contact.state === 'request') { text.disabled = send.disabled = true; tools.setDisabled(true); return; }
    text.disabled = send.disabled = false;
    tools.setDisabled(false);
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    if (oldest === null) {
      older.hidden = !page.more;
      if (page.messages.length) oldest = page.messages[0].id;
    }
    for (const m of page.messages) place(m, false);
    if (atBottom || root.dataset.loaded !== '1') list.scrollTop = list.scrollHeight;
    root.dataset.loaded = '1';
    root.dataset.count = String(byID.size);
    if (!document.hidden && page.messages.some(m => m.direction === 'in')) {
      api('POST', '/v1/read', { contact: fp }).catch(() => {}); // a no-op when nothing is new
    }
  }
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const t = text.value;
    if (!t.trim()) return;
    send.disabled = true;
    try {
      const m = await api('POST', '/v1/send', { to: fp, text: t });
      text.value = '';
      place(m, false);
      list.scrollTop = list.scrollHeight;
    } catch (err) {
      notices.append(errorBox(err));
    } finally {
      send.disabled = false;
      text.focus();
    }
  });
  sendOnEnter(text, form);
  await keep(refresh, ['change']);
  text.focus();
}

function requestNotice(c, done) {
  const box = h('div', { class: 'notice', 'data-testid': 'request' },
    h('p', {}, h('strong', { class: 'name', text: c.name }), ' wants to be your contact. What they wrote shows once you accept. ',
      'Check the safety number with them in person if you can.'));
  const accept = h('button', { 'data-action': 'accept', text: 'Accept' });
  const reject = h('button', { class: 'secondary', 'data-action': 'reject', text: 'Reject' });
  accept.addEventListener('click', async () => {
    accept.disabled = true;
    try { await api('POST', '/v1/contacts/accept', { contact: c.fingerprint }); done(); } catch (e) { box.append(errorBox(e)); accept.disabled = false; }
  });
  reject.addEventListener('click', async () => {
    reject.disabled = true;
    try { await api('POST', '/v1/contacts/reject', { contact: c.fingerprint }); go('#/contacts'); } catch (e) { box.append(errorBox(e)); reject.disabled = false; }
  });
  box.append(h('div', { class: 'row' }, accept, reject));
  return box;
}
function rekeyNotice(c, done) {
  const box = h('div', { class: 'notice', 'data-testid': 'rekey' },
    h('p', {}, h('strong', { class: 'name', text: c.name }), ' proposed new keys (after restoring a backup, say). ',
      'Accept if you expected it; what they wrote on the new keys shows once you do.'));
  const accept = h('button', { 'data-action': 'accept-rekey', text: 'Accept new keys' });
  const reject = h('button', { class: 'secondary', 'data-action': 'reject-rekey', text: 'Reject' });
  accept.addEventListener('click', async () => {
    try { await api('POST', '/v1/contacts/accept', { contact: c.fingerprint }); done(); } catch (e) { box.append(errorBox(e)); }
  });
  reject.addEventListener('click', async () => {
    try { await api('POST', '/v1/contacts/reject', { contact: c.fingerprint }); done(); } catch (e) { box.append(errorBox(e)); }
  });
  box.append(h('div', { class: 'row' }, accept, reject));
  return box;
}

// ---- pages: contacts -------------------------------------------------------

async function pageContacts(root) {
  const requests = h('div', { id: 'requests' });
  const list = h('ul', { class: 'list', id: 'contacts' });
  append(root, h('h1', { text: 'Contacts' }),
    h('div', { class: 'row' }, h('a', { class: 'button', href: '#/invite', id: 'show-invite', text: 'Show my invite' }),
      h('a', { class: 'button secondary', href: '#/add', id: 'add-contact', text: 'Add a contact' })),
    requests, h('h2', { text: 'Everyone' }), list);
  await keep(async () => {
    const cs = await api('GET', '/v1/contacts');
    const asking = cs.filter(c => c.state === 'request' || c.rekey);
    requests.replaceChildren(...(asking.length ? [h('h2', { text: 'Asking you' })] : []),
      ...asking.map(c => c.state === 'request' ? requestNotice(c, () => {}) : rekeyNotice(c, () => {})));
    list.replaceChildren(...cs.map(c => h('li', { 'data-fp': c.fingerprint },
      h('a', { href: '#/contact/' + c.fingerprint },
        h('span', { class: 'avatar', 'aria-hidden': 'true', text: initial(c.name) }),
        h('span', { class: 'conv-body' }, h('span', { class: 'name', text: c.name }), ' ', contactTags(c),
          h('div', { class: 'muted small wrap', text: groupFP(c.fingerprint) }))))));
    if (!cs.length) list.append(h('li', { class: 'muted', text: 'Nobody yet.' }));
  }, ['change']);
}

async function pageContact(root, fp) {
  const body = h('div');
  append(root, body);
  await keep(async () => {
    const c = await contactByFP(fp);
    const rename = h('input', { type: 'text', id: 'rename', value: c.name, maxlength: 64, 'aria-label': 'Name' });
    const out = h('div');
    const act = (label, cls, fn, id) => {
      const b = h('button', { class: cls, id, text: label });
      b.addEventListener('click', async () => {
        b.disabled = true;
        try { await fn(); } catch (e) { out.replaceChildren(errorBox(e)); } finally { b.disabled = false; }
      });
      return b;
    };
    const removeConfirm = h('div', { class: 'notice', hidden: true },
      h('p', { text: 'Remove ' + c.name + '? Their keys, your messages with them and what waits for them are erased. Adding their invite again starts afresh.' }),
      h('div', { class: 'row' },
        act('Yes, remove', 'danger', async () => { await api('POST', '/v1/contacts/remove', { contact: fp }); go('#/contacts'); }, 'remove-yes'),
        act('Keep', 'secondary', async () => { removeConfirm.hidden = true; })));
    body.replaceChildren(
      h('h1', {}, h('span', { class: 'name', text: c.name })),
      h('div', { class: 'card' }, h('dl', { class: 'kv' },
        h('dt', { text: 'State' }), h('dd', {}, c.state, ' ', contactTags(c)),
        h('dt', { text: 'Fingerprint' }), h('dd', { class: 'wrap', text: groupFP(c.fingerprint) }))),
      c.state === 'request' ? requestNotice(c, () => {}) : null,
      c.rekey ? rekeyNotice(c, () => {}) : null,
      h('div', { class: 'row' },
        h('a', { class: 'button', href: '#/chat/' + fp, text: 'Open chat' }),
        h('a', { class: 'button secondary', href: '#/verify/' + fp, id: 'verify', text: 'Verify safety number' })),
      h('h2', { text: 'Rename' }),
      h('p', { class: 'muted small', text: 'Only you see the name you give.' }),
      h('div', { class: 'row' }, rename,
        act('Rename', 'secondary', async () => { await api('POST', '/v1/contacts/rename', { contact: fp, name: rename.value }); out.replaceChildren(h('p', { class: 'match', text: 'Renamed.' })); }, 'rename-save')),
      h('h2', { text: 'Keys' }),
      h('p', { class: 'muted small', text: c.state === 'pending'
        ? 'They have not answered. You can send your request again while the invite you used is valid.'
        : 'Start new keys without meeting again: after restoring a backup, or when the clock was wrong. They accept on their side.' }),
      act(c.state === 'pending' ? 'Send request again' : 'Propose new keys', 'secondary', async () => {
        const r = await api('POST', '/v1/contacts/rekey', { contact: fp });
        out.replaceChildren(h('p', { class: 'match', text: r.state === 'pending' ? 'Request sent again.' : 'New keys proposed; they take effect once they accept.' }));
      }, 'rekey'),
      h('h2', { text: 'Remove' }),
      act('Remove contact', 'danger', async () => { removeConfirm.hidden = false; }, 'remove'),
      removeConfirm, out);
  }, ['change']);
}

async function pageVerify(root, fp) {
  const c = await contactByFP(fp);
  const v = await api('GET', '/v1/contacts/verify?contact=' + encodeURIComponent(fp));
  const num = v.safety_number;
  const groups = num.split(/\s+/).filter(Boolean);
  const result = h('p', { id: 'compare-result', 'aria-live': 'polite' });
  const check = text => {
    const norm = s => s.replace(/\s+/g, '');
    if (norm(text) === norm(num)) result.replaceChildren(h('span', { class: 'match', text: '✓ The numbers match: this is ' }), h('span', { class: 'name', text: c.name }), '’s device, and nobody is in between.');
    else result.replaceChildren(h('span', { class: 'mismatch', text: '✗ The numbers differ. Do not trust this contact until you find out why (ask them to re-add you in person).' }));
  };
  append(root,
    h('h1', {}, 'Safety number with ', h('span', { class: 'name', text: c.name })),
    h('p', { class: 'muted', text: 'The same number shows on both devices. Read it aloud side by side, or scan each other’s code.' }),
    h('div', { class: 'compare' },
      h('div', { class: 'card' }, h('h2', { text: 'The number' }),
        h('div', { class: 'digits', id: 'safety-digits' }, groups.map(g => h('span', { text: g })))),
      h('div', { class: 'card' }, h('h2', { text: 'As a code' }),
        h('img', { class: 'qr', id: 'safety-qr', alt: 'QR code of the safety number', src: '/ui/qr.svg?text=' + encodeURIComponent(num) }))),
    h('div', { class: 'card' }, h('h2', { text: 'Scan theirs' }),
      scanner(text => check(text)), result));
}

async function pageInvite(root) {
  const inv = await api('GET', '/v1/invite');
  const self = await api('GET', '/v1/self');
  const copied = h('span', { class: 'muted small', 'aria-live': 'polite' });
  const link = h('div', { class: 'link', id: 'invite-link', text: inv.link });
  const copy = h('button', { id: 'copy', text: 'Copy link' });
  copy.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(inv.link); copied.textContent = 'Copied.'; } catch (e) {
      const r = document.createRange(); r.selectNodeContents(link);
      const sel = getSelection(); sel.removeAllRanges(); sel.addRange(r);
      copied.textContent = 'Selected: copy it with Ctrl+C.';
    }
  });
  const print = h('button', { class: 'secondary', id: 'print', text: 'Print' });
  print.addEventListener('click', () => window.print());
  const days = Math.max(0, Math.round((new Date(inv.expires) - Date.now()) / 86400000));
  append(root,
    h('h1', { text: 'My invite' }),
    h('p', { class: 'noprint', text: 'Let someone scan this code with their Grapevine, or send them the link. Whoever adds it can write to you at once; you see them as a request.' }),
    h('div', { class: 'card' },
      h('p', { class: 'name', style: null }, h('strong', { text: self.name })),
      h('img', { class: 'qr', id: 'invite-qr', alt: 'QR code of my invite', src: '/ui/qr.svg?text=' + encodeURIComponent(inv.link) }),
      link,
      h('p', { class: 'small', id: 'invite-valid', text: 'Valid until ' + fmtDate(inv.expires) + ' (' + days + (days === 1 ? ' day' : ' days') + '), or until you accept a request that came through it; then a fresh one shows here.' }),
      h('p', { class: 'small muted wrap', text: 'Fingerprint: ' + groupFP(self.fingerprint) }),
      h('div', { class: 'row noprint' }, copy, print, copied)));
}

// scanner offers the camera, a photo and returns decoded QR texts to onText.
function scanner(onText) {
  const status = h('p', { class: 'muted small', 'aria-live': 'polite' });
  const video = h('video', { class: 'camera', hidden: true, muted: true, playsinline: true, autoplay: true });
  const start = h('button', { class: 'secondary', id: 'camera', text: 'Scan with the camera' });
  const stop = h('button', { class: 'secondary', hidden: true, text: 'Stop the camera' });
  const file = h('input', { type: 'file', accept: 'image/*', id: 'photo', capture: 'environment', hidden: true });
  const pick = h('button', { class: 'secondary', id: 'pick-photo', text: 'Use a photo' });
  pick.addEventListener('click', () => file.click());
  let stream = null, timer = null, busy = false;
  const canvas = document.createElement('canvas');
  const halt = () => {
    clearInterval(timer); timer = null;
    if (stream) for (const t of stream.getTracks()) t.stop();
    stream = null; video.hidden = stop.hidden = true; start.hidden = false;
  };
  cleanup.push(halt);
  const found = text => { halt(); status.textContent = 'Code read.'; onText(text); };
  async function decode(blob, type, timeoutMs) {
    return upload('/ui/qr/decode', blob, type, null, timeoutMs).then(r => r.text);
  }
  start.addEventListener('click', async () => {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { status.textContent = 'This browser offers no camera here.'; return; }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
    } catch (e) { status.textContent = 'No camera: ' + e.message; return; }
    video.srcObject = stream; video.hidden = stop.hidden = false; start.hidden = true;
    status.textContent = 'Hold the code in front of the camera…';
    timer = setInterval(() => {
      if (busy || video.readyState < 2 || !video.videoWidth) return;
      const scale = Math.min(1, 960 / Math.max(video.videoWidth, video.videoHeight));
      canvas.width = Math.round(video.videoWidth * scale); canvas.height = Math.round(video.videoHeight * scale);
      canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
      busy = true;
      canvas.toBlob(blob => {
        if (!blob) { busy = false; return; } // no frame this time: try the next
        decode(blob, 'image/jpeg', 10000).then(found, () => {}).finally(() => { busy = false; });
      }, 'image/jpeg', 0.9);
    }, 350);
  });
  stop.addEventListener('click', halt);
  file.addEventListener('change', async () => {
    const f = file.files[0];
    if (!f) return;
    status.textContent = 'Reading the photo…';
    try { found(await decode(f, f.type)); } catch (e) { status.textContent = e.message; }
    file.value = '';
  });
  return h('div', { class: 'scanner' }, h('div', { class: 'row' }, start, stop, pick, file), video, status);
}

async function pageAdd(root) {
  const link = h('textarea', { id: 'add-link', rows: 3, placeholder: 'grapevine:…', 'aria-label': 'Invite link' });
  const name = h('input', { type: 'text', id: 'add-name', maxlength: 64, placeholder: 'the name in their invite', 'aria-label': 'Name' });
  const out = h('div');
  const add = h('button', { id: 'add', text: 'Add contact' });
  const form = h('form', {}, h('label', { for: 'add-link', text: 'Their invite link' }), link,
    h('label', { for: 'add-name', text: 'Name (optional)' }), name, h('p', {}, add), out);
  form.addEventListener('submit', async e => {
    e.preventDefault();
    add.disabled = true;
    try {
      const c = await api('POST', '/v1/contacts', { link: link.value.trim(), name: name.value.trim() || undefined });
      go('#/chat/' + c.fingerprint);
    } catch (err) { out.replaceChildren(errorBox(err)); } finally { add.disabled = false; }
  });
  append(root, h('h1', { text: 'Add a contact' }),
    h('div', { class: 'card' }, h('h2', { text: 'Scan their code' }),
      h('p', { class: 'muted small', text: 'With the camera, or from a photo or screenshot of it.' }),
      scanner(text => { link.value = text; out.replaceChildren(h('p', { class: 'match', text: 'Invite read: press Add contact.' })); add.focus(); })),
    h('div', { class: 'card' }, h('h2', { text: 'Or paste their link' }), form));
}

// ---- pages: mesh -----------------------------------------------------------

async function pageMesh(root) {
  const statusBox = h('div', { class: 'card', id: 'mesh-status' });
  const pic = h('div', { class: 'card' });
  const table = h('div', { class: 'scroll-x' });
  append(root, h('h1', { text: 'Mesh' }), pic, statusBox, h('h2', { text: 'Neighbours now' }), table);
  await keep(async () => {
    const [st, peers] = await Promise.all([api('GET', '/v1/status'), api('GET', '/v1/peers')]);
    const quota = st.relay_quota > 0 ? st.relay_quota : 0;
    const pct = quota ? Math.min(100, 100 * st.carried_bytes / quota) : 0;
    statusBox.replaceChildren(h('dl', { class: 'kv' },
      h('dt', { text: 'Neighbours' }), h('dd', { text: String(st.peers) }),
      h('dt', { text: 'Listening' }), h('dd', { text: (st.listen || []).join(', ') || 'not listening' }),
      h('dt', { text: 'Discovery' }), h('dd', { text: st.discovery ? 'on (beacons)' : 'off or stealth' }),
      h('dt', { text: 'Relay' }), h('dd', { text: st.relay ? 'on' : 'off: only your own mail' }),
      h('dt', { text: 'Carried for others' }), h('dd', {},
        st.carried + ' envelopes, ' + fmtBytes(st.carried_bytes) + (quota ? ' of ' + fmtBytes(quota) : ''),
        quota ? h('div', { class: 'bar', title: pct.toFixed(1) + '%' }, h('div', { style: null, 'data-pct': pct.toFixed(1) })) : null),
      h('dt', { text: 'Yours waiting' }), h('dd', { text: st.queued + ' envelopes, ' + fmtBytes(st.queued_bytes) }),
      h('dt', { text: 'Receipts travelling' }), h('dd', { text: String(st.receipts) }),
      h('dt', { text: 'Store' }), h('dd', { text: fmtBytes(st.store_bytes) }),
      h('dt', { text: 'Running since' }), h('dd', { text: st.started ? fmtDate(st.started) : '—' }),
      st.clock ? h('dt', { text: 'Clock' }) : null, st.clock ? h('dd', { class: 'mismatch', text: 'not trusted: ' + st.clock }) : null));
    // The bar's width is set from script (CSP forbids inline styles in markup).
    for (const d of statusBox.querySelectorAll('[data-pct]')) d.style.width = d.dataset.pct + '%';
    pic.replaceChildren(h('h2', { text: 'Neighbourhood' }), hood(peers),
      h('p', { class: 'muted small', text: 'You in the middle; each line a link now, thicker for more traffic. Neighbours are strangers unless a contact recognised you privately.' }));
    const now = Date.now();
    table.replaceChildren(peers.length ? h('table', { id: 'peers' },
      h('thead', {}, h('tr', {}, ['Neighbour', 'Linked for', 'Sent', 'Received', 'Envelopes ↑/↓', 'Synced'].map(t => h('th', { text: t })))),
      h('tbody', {}, peers.map(p => h('tr', {},
        h('td', {}, h('span', { class: 'name', text: p.contact || p.addr }), p.contact ? h('div', { class: 'muted small', text: p.addr }) : null,
          h('div', { class: 'muted small', text: p.transport + ', ' + (p.static ? 'static peer' : p.direction === 'in' ? 'they dialled' : 'you dialled') })),
        h('td', { text: fmtDuration(now - new Date(p.since)) }),
        h('td', { text: fmtBytes(p.bytes_sent) }), h('td', { text: fmtBytes(p.bytes_received) }),
        h('td', { text: p.envelopes_sent + ' / ' + p.envelopes_received }),
        h('td', { text: p.synced ? 'yes' : 'syncing…' }))))) : h('p', { class: 'muted', text: 'No neighbour now. Mail waits here until one comes within reach, or goes by bundle.' }));
  }, ['change', 'mesh']);
}

// hood draws this node and its neighbours: an SVG star.
function hood(peers) {
  const W = 320, H = 240, cx = W / 2, cy = H / 2, r = 88;
  const svg = h('svg', { svg: true, class: 'hood', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': peers.length + ' neighbours' });
  const max = Math.max(1, ...peers.map(p => p.bytes_sent + p.bytes_received));
  peers.forEach((p, i) => {
    const a = -Math.PI / 2 + 2 * Math.PI * i / Math.max(1, peers.length);
    const x = cx + r * Math.cos(a), y = cy + r * Math.sin(a);
    const w = 1 + 5 * Math.log1p(p.bytes_sent + p.bytes_received) / Math.log1p(max);
    svg.append(h('line', { svg: true, class: 'edge', x1: cx, y1: cy, x2: x.toFixed(1), y2: y.toFixed(1), 'stroke-width': w.toFixed(1) }));
    svg.append(h('circle', { svg: true, class: 'node', cx: x.toFixed(1), cy: y.toFixed(1), r: 14 }));
    const label = (p.contact || p.addr);
    svg.append(h('text', { svg: true, x: x.toFixed(1), y: (y + (y > cy ? 28 : -20)).toFixed(1), text: label.length > 22 ? label.slice(0, 21) + '…' : label }));
  });
  svg.append(h('circle', { svg: true, class: 'node me', cx, cy, r: 20 }));
  svg.append(h('text', { svg: true, x: cx, y: cy + 36, text: 'you' }));
  return svg;
}

// ---- pages: bundles --------------------------------------------------------

// bundleProgress shows the node's progress of an export or import (the
// API's progress events) on a bar and in words.
function bundleProgress(bar, status, verb, p) {
  bar.max = p.total_bytes || 1;
  bar.value = Math.min(p.bytes, bar.max);
  const pct = p.total_bytes ? Math.floor(Math.min(p.bytes, p.total_bytes) * 100 / p.total_bytes) : 100;
  status.textContent = verb + ': ' + pct + ' % · ' + p.envelopes + (p.total_envelopes ? ' of ' + p.total_envelopes : '') +
    ' envelopes · ' + fmtBytes(p.bytes) + ' of ' + fmtBytes(p.total_bytes);
  status.dataset.percent = String(pct);
  status.dataset.steps = String((Number(status.dataset.steps) || 0) + 1);
}

async function pageBundles(root) {
  const exProg = h('progress', { max: 1, value: 0, hidden: true, id: 'export-progress' });
  const exStatus = h('p', { class: 'muted small', id: 'export-status', role: 'status' });
  const exOut = h('div');
  const exBtn = h('button', { id: 'export', text: 'Export a bundle' });
  exBtn.addEventListener('click', async () => {
    exBtn.disabled = true; exProg.hidden = false; exProg.removeAttribute('value');
    exOut.replaceChildren();
    exStatus.textContent = 'Writing the bundle…';
    delete exStatus.dataset.steps;
    try {
      // The node writes the bundle, saying how far it has come; then the
      // page downloads it.
      const res = await fetch('/ui/export', { method: 'POST', credentials: 'same-origin', headers: { Accept: 'text/event-stream' } });
      if (!res.ok) throw new Error((await res.json()).error);
      let result = null;
      const feed = sseReader((t, d) => {
        if (t === 'progress') bundleProgress(exProg, exStatus, 'Writing', d);
        else if (t === 'result') result = d;
        else if (t === 'error') throw new APIError(d.status, d.code, d.error);
      });
      const events = res.body.getReader(), dec = new TextDecoder();
      for (;;) {
        const { done, value } = await events.read();
        if (done) break;
        feed(dec.decode(value, { stream: true }));
      }
      if (!result) throw new Error('the node stopped before the bundle was written');
      const dl = await fetch(res.headers.get('X-Grapevine-Download'), { credentials: 'same-origin' });
      if (!dl.ok) throw new Error((await dl.json()).error);
      const total = Number(dl.headers.get('Content-Length')) || 0;
      const name = (dl.headers.get('Content-Disposition') || '').match(/filename="([^"]+)"/);
      const reader = dl.body.getReader();
      const parts = []; let got = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(value); got += value.length;
        if (total) { exProg.max = total; exProg.value = got; exStatus.textContent = 'Downloading: ' + fmtBytes(got) + ' of ' + fmtBytes(total); }
      }
      const url = URL.createObjectURL(new Blob(parts, { type: 'application/octet-stream' }));
      const a = h('a', { href: '#/bundles', id: 'export-link', download: name ? name[1] : 'grapevine.gvb', text: 'Save the bundle again' });
      a.href = url;
      exStatus.textContent = '';
      exOut.replaceChildren(h('p', { class: 'match', text: result.count + ' envelopes, ' + fmtBytes(got) + '. ' }), a);
      a.click();
    } catch (e) { exStatus.textContent = ''; exOut.replaceChildren(errorBox(e)); } finally { exBtn.disabled = false; }
  });
  const file = h('input', { type: 'file', id: 'import-file', accept: '.gvb,application/octet-stream' });
  const imProg = h('progress', { max: 1, value: 0, hidden: true, id: 'import-progress' });
  const imStatus = h('p', { class: 'muted small', id: 'import-status', role: 'status' });
  const imOut = h('div', { id: 'import-report' });
  file.addEventListener('change', async () => {
    const f = file.files[0];
    if (!f) return;
    imProg.hidden = false; imProg.max = f.size || 1; imProg.value = 0;
    imOut.replaceChildren();
    delete imStatus.dataset.steps;
    try {
      // Up to the node, then into it, each with its progress.
      const rep = await upload('/ui/import', f, 'application/octet-stream', (n, t) => {
        imProg.max = t; imProg.value = n;
        imStatus.textContent = 'Uploading: ' + fmtBytes(n) + ' of ' + fmtBytes(t);
      }, 0, (t, d) => { if (t === 'progress') bundleProgress(imProg, imStatus, 'Importing', d); });
      const rows = [['envelopes read', rep.received], ['new messages for you', rep.messages], ['contact requests', rep.requests],
        ['waiting in requests', rep.request_messages], ['of yours now delivered', rep.delivered], ['to carry for others', rep.new],
        ['receipts to carry', rep.receipts], ['already held', rep.duplicate], ['expired', rep.expired], ['invalid', rep.invalid]];
      // append, not replaceChildren, which would write a null as "null".
      append(imOut, h('p', { class: 'match', text: 'Imported ' + f.name + '.' }),
        h('dl', { class: 'kv' }, rows.filter(([, v]) => v).map(([k, v]) => [h('dt', { text: k }), h('dd', { text: String(v) })])),
        rep.complete ? null : h('p', { class: 'mismatch', text: 'The bundle was damaged or cut short; every intact envelope was taken.' }));
    } catch (e) { imStatus.textContent = ''; imOut.replaceChildren(errorBox(e)); }
    file.value = '';
  });
  append(root, h('h1', { text: 'Bundles' }),
    h('p', { class: 'muted', text: 'Where there is no network, a USB stick carries mail: export a bundle here, import it on the next device. Whoever carries it cannot read it.' }),
    h('div', { class: 'card' }, h('h2', { text: 'Export' }), h('p', { class: 'small', text: 'Everything this node holds: your mail, receipts, what it carries for others.' }), exBtn, exProg, exStatus, exOut),
    h('div', { class: 'card' }, h('h2', { text: 'Import' }), h('label', { for: 'import-file', text: 'Choose a bundle file (.gvb)' }), file, imProg, imStatus, imOut));
}

// ---- pages: settings -------------------------------------------------------

// sizeText writes a byte count as the node reads it back (64MiB, 1.5GiB).
function sizeText(n) {
  for (const [u, m] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]]) {
    if (n >= m && (n % m === 0 || (n * 10) % m === 0)) return String(n / m) + u;
  }
  return String(n);
}

async function pageSettings(root) {
  const [self, st, set, node] = await Promise.all([api('GET', '/v1/self'), api('GET', '/v1/status'), api('GET', '/ui/settings'),
    api('GET', '/v1/settings')]);
  const up = set.up;
  const check = (id, label, on, fn) => {
    const box = h('input', { type: 'checkbox', id });
    box.checked = on;
    if (fn) box.addEventListener('change', () => fn(box.checked, box));
    return h('label', { for: id, class: 'row' }, box, h('span', { text: label }));
  };
  const clockOut = h('div');
  const trust = h('button', { class: 'secondary', text: 'The clock is right: trust it' });
  trust.addEventListener('click', async () => { await api('POST', '/v1/clock/trust', {}); clockOut.replaceChildren(h('p', { class: 'match', text: 'Clock trusted.' })); });

  // The node's settings: a form that changes them all at once, or none.
  const relay = check('set-relay', 'Carry mail for others (relay)', node.relay);
  const quota = h('input', { type: 'text', id: 'set-quota', value: sizeText(node.relay_quota), autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': 'set-quota-hint' });
  const stealth = check('set-stealth', 'Stealth: send nothing on the LAN unasked (no beacons: neighbours do not find this node, nor it them; it links with its peers and whoever dials it)', node.stealth);
  const retention = h('input', { type: 'text', id: 'set-retention', value: node.retention, autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': 'set-retention-hint' });
  // Files: the largest one sent or fetched, and the pool for chunks of
  // others' files (a size, 0, or relay: as much as the relay quota).
  const fileLimit = h('input', { type: 'text', id: 'set-file-limit', value: sizeText(node.file_limit), autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': 'set-file-limit-hint' });
  const chunkText = now => now.chunk_quota_of_relay ? 'relay' : sizeText(now.chunk_quota);
  const chunkQuota = h('input', { type: 'text', id: 'set-chunk-quota', value: chunkText(node), autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': 'set-chunk-quota-hint' });
  const chunkNow = h('span', { id: 'chunk-quota-now' });
  const showChunkNow = now => {
    chunkNow.textContent = now.chunk_quota === 0 ? 'Now none: no chunks are carried for others. '
      : 'Now ' + sizeText(now.chunk_quota) + (now.chunk_quota_of_relay ? ' (as the relay quota). ' : '. ');
  };
  showChunkNow(node);
  const fields = { relay_quota: quota, retention, file_limit: fileLimit, chunk_quota: chunkQuota };
  const out = h('div', { id: 'settings-out', role: 'status' });
  const save = h('button', { id: 'save-settings', type: 'submit', text: 'Save' });
  const flagNote = () => node.flags && node.flags.length
    ? h('p', { class: 'notice small', id: 'settings-flags', text: 'grapevine up was started with a flag for ' + node.flags.join(', ') +
      ': a change here applies now and is saved, but that flag wins again when the node restarts with it.' }) : null;
  let flags = flagNote();
  const form = h('form', { class: 'card', id: 'node-settings-form', novalidate: true }, h('h2', { text: 'Relaying and privacy' }),
    relay,
    h('label', { for: 'set-quota', text: 'Space for others\u2019 mail (relay quota)' }), quota,
    h('p', { class: 'muted small', id: 'set-quota-hint', text: 'For example 64MiB, 1GiB, 1.5GB. Lowering it drops what is carried beyond it at once.' }),
    stealth,
    h('label', { for: 'set-retention', text: 'Retention' }), retention,
    h('p', { class: 'muted small', id: 'set-retention-hint', text: 'How long keys are kept and your envelopes live: 1d to 31d (or hours, 36h). A shorter one forgets older keys at once: mail written before it can no longer be opened.' }),
    h('h2', { text: 'Files' }),
    h('label', { for: 'set-file-limit', text: 'Largest file sent or fetched (file limit)' }), fileLimit,
    h('p', { class: 'muted small', id: 'set-file-limit-hint', text: 'From 1MiB to 100MiB; 16MiB suits the mesh, more suits bundles and internet peers. A file over it arrives without its bytes, saying why.' }),
    h('label', { for: 'set-chunk-quota', text: 'Space for chunks of others\u2019 files (chunk quota)' }), chunkQuota,
    h('p', { class: 'muted small', id: 'set-chunk-quota-hint' }, chunkNow,
      'A pool apart from the relay quota, so files never push texts out: a size, 0 for none, or relay for as much as the relay quota.'),
    flags, h('p', { class: 'row' }, save), out);
  form.addEventListener('submit', async e => {
    e.preventDefault();
    for (const el of Object.values(fields)) el.removeAttribute('aria-invalid');
    save.disabled = true;
    out.replaceChildren(h('p', { class: 'muted', text: 'Saving…' }));
    try {
      const now = await api('PUT', '/v1/settings', { relay: relay.querySelector('input').checked, relay_quota: quota.value.trim(),
        stealth: stealth.querySelector('input').checked, retention: retention.value.trim(),
        file_limit: fileLimit.value.trim(), chunk_quota: chunkQuota.value.trim() });
      Object.assign(node, now);
      quota.value = sizeText(now.relay_quota);
      retention.value = now.retention;
      fileLimit.value = sizeText(now.file_limit);
      chunkQuota.value = chunkText(now);
      showChunkNow(now);
      out.replaceChildren(h('p', { class: 'match', text: 'Saved. The node runs with it now, and keeps it after a restart.' }));
      root.dataset.saved = String((Number(root.dataset.saved) || 0) + 1);
    } catch (err) {
      // The node names the field it refused: point at it.
      const field = err.field && fields[err.field];
      if (field) { field.setAttribute('aria-invalid', 'true'); field.focus(); }
      out.replaceChildren(errorBox(new Error('Not saved: ' + err.message)));
    } finally { save.disabled = false; }
  });

  append(root, h('h1', { text: 'Settings' }),
    h('div', { class: 'card' }, h('h2', { text: 'You' }), h('dl', { class: 'kv' },
      h('dt', { text: 'Name' }), h('dd', { class: 'name', text: self.name }),
      h('dt', { text: 'Fingerprint' }), h('dd', { class: 'wrap', text: groupFP(self.fingerprint) }))),
    form,
    h('div', { class: 'card' }, h('h2', { text: 'Notifications' }),
      check('notify', 'Desktop notification when a message arrives', prefs.notify, async (on, box) => {
        if (on && 'Notification' in window && Notification.permission !== 'granted') {
          if (await Notification.requestPermission() !== 'granted') { box.checked = false; on = false; }
        }
        prefs.notify = on;
      }),
      check('notify-text', 'Show who wrote and what in the notification (others may see your screen)', prefs.notifyText, on => { prefs.notifyText = on; }),
      h('p', { class: 'muted small', text: 'Off unless you turn them on; without the text unless you ask for it.' })),
    h('div', { class: 'card' }, h('h2', { text: 'This node' }), h('dl', { class: 'kv', id: 'node-settings' },
      h('dt', { text: 'LAN discovery' }), h('dd', { text: up.discovery ? 'on' : 'off (--no-discovery)' }),
      h('dt', { text: 'Listening on' }), h('dd', { text: (st.listen || []).join(', ') || 'nowhere' }),
      h('dt', { text: 'Static peers' }), h('dd', { class: 'wrap', text: (up.peers || []).join(', ') || 'none' }),
      h('dt', { text: 'History' }), h('dd', { text: set.history_days + ' days' }),
      h('dt', { text: 'Hops' }), h('dd', { text: String(set.hops) }),
      h('dt', { text: 'Routing' }), h('dd', { text: set.routing }),
      h('dt', { text: 'Invite lifetime' }), h('dd', { text: set.invite_hours % 24 === 0 ? set.invite_hours / 24 + ' days' : set.invite_hours + ' hours' })),
      h('p', { class: 'muted small', text: 'These are chosen when the node starts (grapevine up --listen, --peer HOST:PORT, --no-discovery) or at grapevine init (history, hops, routing).' })),
    h('div', { class: 'card' }, h('h2', { text: 'Clock' }),
      st.clock ? [h('p', { class: 'mismatch', text: 'Not trusted: ' + st.clock }), trust] : h('p', { text: 'The clock is trusted.' }), clockOut),
    set.lan ? h('div', { class: 'card' }, h('h2', { text: 'Use from another device' }),
      h('p', { class: 'small', text: 'Scan with the phone. Its browser warns about the certificate: accept it only if the fingerprint it shows is this one.' }),
      h('img', { class: 'qr', alt: 'QR code of the link for another device', src: '/ui/qr.svg?text=' + encodeURIComponent(set.lan.url) }),
      h('p', { class: 'link', text: 'SHA-256 ' + set.lan.fingerprint.match(/.{2}/g).join(':') })) : null);
}

// ---- start -----------------------------------------------------------------

async function lockScreen() {
  const pass = h('input', { type: 'password', id: 'passphrase', autocomplete: 'current-password', 'aria-label': 'Passphrase' });
  const out = h('div');
  const btn = h('button', { id: 'unlock', text: 'Unlock' });
  const form = h('form', { class: 'card' }, h('h1', { text: 'Your node is locked' }),
    h('p', { text: 'Enter the passphrase of this Grapevine home to start the node.' }),
    h('label', { for: 'passphrase', text: 'Passphrase' }), pass, h('p', {}, btn), out);
  form.addEventListener('submit', async e => {
    e.preventDefault();
    btn.disabled = true; out.replaceChildren(h('p', { class: 'muted', text: 'Unlocking…' }));
    try {
      await api('POST', '/ui/unlock', { passphrase: pass.value });
      pass.value = '';
      start();
    } catch (err) { out.replaceChildren(errorBox(err)); btn.disabled = false; pass.select(); }
  });
  document.getElementById('nav').hidden = true;
  main().replaceChildren(form);
  document.body.dataset.ready = 'locked';
  pass.focus();
}

async function start() {
  let state;
  try {
    state = await api('GET', '/ui/state');
  } catch (e) {
    document.getElementById('nav').hidden = true;
    main().replaceChildren(h('div', { class: 'card' }, h('h1', { text: 'Not signed in' }),
      h('p', { text: 'Open the link that grapevine up printed, or run grapevine ui. It signs this browser in.' })));
    document.body.dataset.ready = 'signed-out';
    return;
  }
  if (state.locked) { lockScreen(); return; }
  document.getElementById('nav').hidden = false;
  startEvents();
  window.addEventListener('hashchange', route);
  route();
}
document.addEventListener('DOMContentLoaded', start);
