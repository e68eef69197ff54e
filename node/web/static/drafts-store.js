/* siji: the drafts kept on this phone, in IndexedDB, for the page (offline.js) and the
   service worker (sw.js) alike. A draft is what a form would have posted:
   {key, node, user, kind: "case" | "warning", fields: [[name, value], ...], title,
    saved_at, status: "waiting" | "refused", error: null | {code, message}}.
   The key goes with it to the node, which writes a key once (node/drafts.py). */
(function (scope) {
  'use strict';
  const TITLE = {case: 'summary', warning: 'subject'};
  const NOT_KEPT = ['csrf_token', 'draft_key'];

  function open() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open('siji-drafts', 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore('drafts', {keyPath: 'key'});
        req.result.createObjectStore('meta', {keyPath: 'id'});  // who uses this phone now
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  async function run(store, mode, work) {
    const db = await open();
    try {
      return await new Promise((resolve, reject) => {
        const tx = db.transaction(store, mode);
        const req = work(tx.objectStore(store));
        tx.oncomplete = () => resolve(req.result);
        tx.onerror = tx.onabort = () => reject(tx.error);
      });
    } finally {
      db.close();
    }
  }

  /* A random version 4 UUID; crypto.randomUUID exists only on HTTPS or localhost. */
  function newKey() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join('-');
  }

  /* A draft from posted form data (a FormData), saved by ``who`` ({user, node}). */
  function fromForm(kind, data, who) {
    const fields = [];
    let key = null;
    for (const [name, value] of data.entries()) {
      if (typeof value !== 'string') continue;
      if (name === 'draft_key') key = value;
      else if (!NOT_KEPT.includes(name)) fields.push([name, value]);
    }
    const title = (fields.find((f) => f[0] === TITLE[kind]) || ['', ''])[1];
    return {key: key || newKey(), node: who.node, user: who.user, kind, fields,
            title: title.slice(0, 80), saved_at: new Date().toISOString(),
            status: 'waiting', error: null};
  }

  const get = (key) => run('drafts', 'readonly', (s) => s.get(key));
  const put = (draft) => run('drafts', 'readwrite', (s) => s.put(draft));

  /* Keep a draft. The same key with the same fields is the same draft (a second tap);
     with other fields it is another draft, which gets a key of its own. */
  async function keep(draft) {
    const old = await get(draft.key);
    if (old && JSON.stringify(old.fields) !== JSON.stringify(draft.fields)) {
      draft.key = newKey();
    }
    await put(draft);
    return draft;
  }

  scope.SijiDrafts = {
    newKey, fromForm, keep, put, get,
    remove: (key) => run('drafts', 'readwrite', (s) => s.delete(key)),
    all: () => run('drafts', 'readonly', (s) => s.getAll()),
    setWho: (who) => run('meta', 'readwrite', (s) => s.put({id: 'who', ...who})),
    who: () => run('meta', 'readonly', (s) => s.get('who')),
  };
})(self);
