/* siji: the liaison's phone without a link to the node (node/web/drafts.py, docs/web.md).

   On every page of a user who may register: installs the service worker (sw.js), shows
   待上传 N in the menu, and sends this user's drafts, oldest first, on load, when the
   phone comes back online and every 30 s while some wait. A draft is deleted only once
   the node has answered with its case or warning; a refusal stays on the draft.
   On the register and warning forms: keeps what is typed (localStorage, per form and
   user) until it is sent, so a closed tab loses nothing; gives each draft a new key;
   saves the form as a draft when the phone is offline. On /drafts: lists them.
   Pages work without this script; the texts come translated in #siji-offline. */
(function () {
  'use strict';
  const block = document.getElementById('siji-offline');
  if (!block || !self.SijiDrafts) return;
  const C = JSON.parse(block.textContent);
  const T = C.t;
  const D = self.SijiDrafts;
  const who = {user: C.user, node: C.node};
  const here = location.pathname;
  const formOf = (path) => `siji:form:${C.node}:${C.user}:${path}`;
  const SENT = `siji:sent:${C.node}:${C.user}`;
  const pathOf = (kind) => Object.keys(C.forms).find((p) => C.forms[p] === kind);
  const say = (text, params) => text.replace(/%\((\w+)\)s/g, (_, name) => params[name]);

  function read(name) {
    try {
      return JSON.parse(localStorage.getItem(name));
    } catch (err) {
      return null;
    }
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, attrs || {});
    node.append(...children.filter((c) => c !== null));
    return node;
  }

  function status(id, cls, ...parts) {  // a line at the top of the page, or none
    const children = parts.filter((c) => c !== null);
    let line = document.getElementById(id);
    if (!children.length) {
      if (line) line.remove();
      return;
    }
    if (!line) {
      line = el('p', {id, role: 'status'});
      document.querySelector('main').prepend(line);
    }
    line.className = cls;
    line.replaceChildren(...children);
  }

  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register(C.worker, {scope: '/'}).catch(() => {});
  }
  const ready = D.setWho(who).catch(() => {});  // the service worker keeps drafts as this user's

  // A form was posted from here last time: if this page is not that form again (with
  // an error), it was registered or kept as a draft, and what was typed can go.
  const sent = localStorage.getItem(SENT);
  if (sent !== null) {
    localStorage.removeItem(SENT);
    if (sent !== here) localStorage.removeItem(formOf(sent));
  }

  // -- the register and warning forms ----------------------------------------------------
  const kind = C.forms[here];
  const keyInput = kind && document.querySelector('main form input[name=draft_key]');
  if (keyInput) {
    const form = keyInput.form;
    const name = formOf(here);
    const typed = () => Array.from(new FormData(form)).filter(
      ([n, v]) => typeof v === 'string' && !['csrf_token', 'draft_key'].includes(n));
    const kept = read(name);
    if (kept) {
      fill(form, kept.fields);
      keyInput.value = kept.key;
    } else {
      keyInput.value = D.newKey();  // a kept copy of this page must not reuse one key
    }
    const save = () => localStorage.setItem(name, JSON.stringify({key: keyInput.value,
                                                                  fields: typed()}));
    form.addEventListener('input', save);
    form.addEventListener('change', save);
    addEventListener('pageshow', (event) => {  // back to a page saved before: a new draft
      if (event.persisted && !read(name)) keyInput.value = D.newKey();
    });
    form.addEventListener('submit', (event) => {
      if (navigator.onLine) {  // the node answers, or the service worker keeps it
        localStorage.setItem(SENT, here);
        return;
      }
      event.preventDefault();
      const draft = D.fromForm(kind, new FormData(form, event.submitter || null), who);
      D.keep(draft).then(() => {
        localStorage.removeItem(name);
        location.assign(C.drafts + '?saved=1');
      });
    });
    const offline = () => status('drafts-offline', 'notice', navigator.onLine ? null : T.offline);
    addEventListener('offline', offline);
    addEventListener('online', offline);
    offline();
  }

  function fill(form, fields) {
    const values = new Map();
    for (const [n, v] of fields) values.set(n, [...(values.get(n) || []), v]);
    for (const input of form.elements) {
      if (!input.name || ['submit', 'button', 'hidden'].includes(input.type)) continue;
      const got = values.get(input.name) || [];
      if (input.type === 'checkbox' || input.type === 'radio') {
        input.checked = got.includes(input.value);
      } else {
        input.value = got.length ? got[0] : '';
      }
      const changed = ['checkbox', 'radio'].includes(input.type)
        ? input.checked !== input.defaultChecked
        : input.tagName !== 'SELECT' && input.value !== input.defaultValue;
      if (changed && input.closest('details')) input.closest('details').open = true;
    }
  }

  // -- the drafts of this user ------------------------------------------------------------
  async function mine() {
    const all = (await D.all()).filter((d) => d.node === C.node);
    const list = all.filter((d) => d.user === C.user);
    list.sort((a, b) => a.saved_at.localeCompare(b.saved_at));
    return {list, others: all.length - list.length};
  }

  async function show() {
    const {list, others} = await mine();
    let link = document.getElementById('drafts-count');
    if (list.length && !link) {
      link = el('a', {id: 'drafts-count', href: C.drafts});
      (document.querySelector('nav.menu') || document.querySelector('main')).prepend(link);
    }
    if (link) {
      if (list.length) link.textContent = say(T.count, {n: list.length});
      else link.remove();
    }
    const ul = document.getElementById('drafts-list');
    if (!ul) return;
    ul.replaceChildren(...list.map(card));
    document.getElementById('drafts-empty').hidden = list.length > 0;
    const more = document.getElementById('drafts-others');
    more.hidden = !others;
    more.textContent = say(T.others, {n: others});
  }

  function card(d) {
    const refused = d.status === 'refused';
    const edit = el('button', {type: 'button', textContent: T.edit});
    const discard = el('button', {type: 'button', className: 'danger', textContent: T.discard});
    edit.addEventListener('click', async () => {
      // back into the form, as if half-typed; a key the node refused as used gets a new one
      const key = refused && d.error && d.error.code === 'draft_conflict' ? D.newKey() : d.key;
      localStorage.setItem(formOf(pathOf(d.kind)), JSON.stringify({key, fields: d.fields}));
      await D.remove(d.key);
      location.assign(pathOf(d.kind));
    });
    discard.addEventListener('click', async () => {
      if (!confirm(T.confirm_discard)) return;
      await D.remove(d.key);
      await show();
    });
    return el('li', {className: 'draft'},
      el('b', {textContent: T[d.kind]}), ' ',
      el('span', {className: refused ? 'tag warn' : 'state', textContent: refused ? '✕' : T.waiting}),
      el('br'), el('span', {className: 'text', textContent: d.title || T.untitled}), el('br'),
      el('span', {className: 'muted', textContent: say(T.saved, {when: new Date(d.saved_at).toLocaleString()})}),
      refused ? el('p', {className: 'error', role: 'alert',
                         textContent: say(T.refused, {reason: d.error.message})}) : null,
      el('span', {className: 'actions'}, edit, discard));
  }

  // -- sending ---------------------------------------------------------------------------
  let busy = false;
  let again = false;
  async function upload() {
    if (busy) {  // asked while sending: once more when done
      again = true;
      return;
    }
    busy = true;
    const done = [];
    try {
      const waiting = (await mine()).list.filter((d) => d.status === 'waiting');
      if (!waiting.length) return;
      let session;
      try {
        const answer = await fetch(C.session, {headers: {Accept: 'application/json'},
                                                 cache: 'no-store'});
        if (answer.status === 401) {
          status('drafts-login', 'flash error', el('a', {href: C.login, textContent: T.login}));
          return;
        }
        if (!answer.ok) return;
        session = await answer.json();
      } catch (err) {
        return;  // the node cannot be reached: the drafts wait
      }
      if (session.username !== C.user || session.node !== C.node) return;
      status('drafts-login', '');
      for (const d of waiting) {
        const body = new URLSearchParams(d.fields);
        body.set('draft_key', d.key);
        let answer;
        let reply = null;
        try {
          answer = await fetch(C.upload.replace(/_$/, d.kind), {
            method: 'POST', body, cache: 'no-store',
            headers: {'X-CSRFToken': session.csrf_token, Accept: 'application/json'}});
          reply = await answer.json();
        } catch (err) {
          break;  // lost on the way or not JSON: the draft waits, its key makes a resend safe
        }
        if (answer.ok && reply.id) {
          await D.remove(d.key);
          done.push(reply);
        } else if (answer.status === 401) {
          status('drafts-login', 'flash error', el('a', {href: C.login, textContent: T.login}));
          break;
        } else if (reply.error && answer.status < 500 && answer.status !== 429 &&
                   reply.error.code !== 'csrf_refused') {
          await D.put({...d, status: 'refused', error: reply.error});
        } else {
          break;  // busy or failing: try again later
        }
      }
    } finally {
      busy = false;
      if (done.length) {
        const links = done.flatMap((r) => [' ', el('a', {href: r.url, textContent: r.id})]);
        status('drafts-done', 'flash ok', T.uploaded, ...links);
      }
      await show();
      if (again) {
        again = false;
        upload();
      }
    }
  }

  if (document.getElementById('drafts-list')) {
    const params = new URLSearchParams(location.search);
    const note = document.getElementById('drafts-note');
    const text = here !== C.drafts ? T.not_kept : params.has('saved') ? T.saved_here : '';
    note.textContent = text;
    note.hidden = !text;
    document.getElementById('drafts-send').addEventListener('click', upload);
  }
  addEventListener('online', upload);
  setInterval(() => { if (navigator.onLine) upload(); }, 30000);
  ready.then(show).then(upload);
})();
