/* siji service worker: the register and warning forms and the drafts page work offline.

   Served from /sw.js (node/web/drafts.py), which puts one line before this file:
   self.SIJI = {version, pages, forms, assets, store, fallback, signs}.
   - Static files (versioned URLs) are kept at install and answered from the cache.
   - The pages in SIJI.pages are fetched from the network first and kept; offline, the
     kept copy answers, and any other page is answered with the drafts page.
   - A form posted to SIJI.forms that cannot reach the node is kept as a draft in
     IndexedDB (drafts-store.js) under the form's key, and the phone is sent to the
     drafts page; offline.js uploads it later.
   - Logging in or out drops the kept pages (they carry a name and a form token) and
     keeps them again for whoever is logged in now.
   Nothing else is kept: no API answer, no case page. */
'use strict';
const S = self.SIJI;
const CACHE = 'siji-' + S.version;
importScripts(S.store);

async function keepPages(cache) {
  await Promise.all(S.pages.map(async (url) => {
    try {
      const answer = await fetch(url, {credentials: 'same-origin', cache: 'no-store'});
      if (answer.ok && !answer.redirected) await cache.put(url, answer);
      else await cache.delete(url);  // logged out: a login page is not the form
    } catch (err) {
      // no connection: keep what is there
    }
  }));
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(S.assets);
    await keepPages(cache);
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('siji-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

async function page(request, path) {
  const cache = await caches.open(CACHE);
  const kept = S.pages.includes(path);
  try {
    const answer = await fetch(request);
    if (kept && answer.ok && !answer.redirected) await cache.put(path, answer.clone());
    return answer;
  } catch (err) {
    return (kept && await cache.match(path)) || (await cache.match(S.fallback)) ||
      Response.error();
  }
}

async function sendOrKeep(request, kind) {
  const copy = request.clone();
  try {
    return await fetch(request);
  } catch (err) {
    const who = await SijiDrafts.who();
    if (!who) return Response.error();
    await SijiDrafts.keep(SijiDrafts.fromForm(kind, await copy.formData(), who));
    return Response.redirect(S.fallback + '?saved=1', 303);
  }
}

async function signedInOrOut(answer) {
  await answer;
  const cache = await caches.open(CACHE);
  await Promise.all(S.pages.map((url) => cache.delete(url)));
  await keepPages(cache);
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.method === 'POST' && request.mode === 'navigate') {
    if (S.forms[url.pathname]) {
      event.respondWith(sendOrKeep(request, S.forms[url.pathname]));
    } else if (S.signs.includes(url.pathname)) {
      const answer = fetch(request);
      event.respondWith(answer);
      event.waitUntil(signedInOrOut(answer).catch(() => {}));
    }
    return;
  }
  if (request.method !== 'GET') return;
  if (S.assets.includes(url.pathname + url.search)) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  } else if (request.mode === 'navigate') {
    event.respondWith(page(request, url.pathname));
  }
});
