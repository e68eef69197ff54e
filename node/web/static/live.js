// Live counts and new urgent items, without a reload (issue 20).
//
// Every page of a logged-in user carries #live with the address of /api/awaiting, what
// the page already shows (data-seen) and its words in the user's language. Every
// data-every seconds (and when the tab comes back into view) this asks what awaits the
// user, puts the count in the title and the menu, and lists what is new and urgent
// (a warning to acknowledge, an alarm, an escalation, a supervision order) in #live,
// with a link to each. A tone sounds for it if the user turned the sound on (remembered
// on this device). Without JavaScript the page shows the same counts as of its loading
// and a plain refresh link.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch) return;
  var every = Math.max(1, Number(live.dataset.every) || 20) * 1000;
  var seenKey = "siji-seen:" + live.dataset.user;
  var soundKey = "siji-sound:" + live.dataset.user;
  var seen = new Set();
  try {
    JSON.parse(sessionStorage.getItem(seenKey) || "[]").forEach(function (k) { seen.add(k); });
  } catch (e) { /* a damaged entry: start again */ }
  JSON.parse(live.dataset.seen || "[]").forEach(function (k) { seen.add(k); });
  var audio = null;

  var button = document.getElementById("live-sound");
  function soundOn() {
    try { return localStorage.getItem(soundKey) === "1"; } catch (e) { return false; }
  }
  function showSound() {
    if (!button) return;
    button.hidden = false;
    button.textContent = soundOn() ? button.dataset.on : button.dataset.off;
    button.setAttribute("aria-pressed", soundOn() ? "true" : "false");
  }
  if (button) {
    button.addEventListener("click", function () {
      try { localStorage.setItem(soundKey, soundOn() ? "0" : "1"); } catch (e) { return; }
      if (soundOn()) beep(); // the click is the gesture that lets the page make a sound
      showSound();
    });
    showSound();
  }

  function beep() {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    audio = audio || new Context();
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.6);
  }

  function showCount(total) {
    var title = document.title.replace(/^\(\d+\) /, "");
    document.title = total ? "(" + total + ") " + title : title;
    document.querySelectorAll("[data-count]").forEach(function (el) {
      el.textContent = String(total);
      el.hidden = !total;
    });
  }

  function showNew(items) {
    var list = live.querySelector("ul");
    if (!list) {
      var head = document.createElement("p");
      head.textContent = live.dataset["new"];
      list = document.createElement("ul");
      live.appendChild(head);
      live.appendChild(list);
    }
    items.forEach(function (item) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = item.url;
      a.textContent = item.text;
      if (item.level) li.className = "l-" + item.level;
      li.appendChild(a);
      list.insertBefore(li, list.firstChild);
    });
    live.classList.add("has-new");
  }

  function poll() {
    fetch(live.dataset.url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return; // logged out or the node is away: try again next time
        showCount(data.total);
        var fresh = data.items.filter(function (i) { return i.urgent && !seen.has(i.key); });
        data.items.forEach(function (i) { seen.add(i.key); });
        try { sessionStorage.setItem(seenKey, JSON.stringify(Array.from(seen).slice(-500))); }
        catch (e) { /* storage full or off: the page still shows the count */ }
        if (fresh.length) {
          showNew(fresh);
          if (soundOn()) beep();
        }
      })
      .catch(function () { /* offline: the next poll tries again */ });
  }

  setInterval(function () { if (!document.hidden) poll(); }, every);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) poll(); });
})();
