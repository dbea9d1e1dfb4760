/* The chats' streaming (portals/web/chat.py): a message form marked data-chat-stream is posted with
   fetch; the answer streams in over server-sent events; at the end the log is fetched again (with
   any proposal and its confirm button). Without EventSource or fetch nothing here runs and the
   form works through htmx or a plain post. No inline script (CSP script-src 'self'). */
(function () {
  "use strict";
  // An htmx-sent message form (no streaming) is emptied once its answer is in.
  document.addEventListener("htmx:afterRequest", function (ev) {
    var form = ev.detail && ev.detail.elt;
    if (form && form.matches && form.matches("form[data-chat-reset]") && ev.detail.successful) form.reset();
  });
  if (!window.EventSource || !window.fetch) return;

  function bubble(log, who, label, text) {
    var li = document.createElement("li");
    li.className = "chat-msg chat-" + who;
    var name = document.createElement("span");
    name.className = "chat-who";
    name.textContent = label;
    var body = document.createElement("span");
    body.className = "chat-text";
    body.textContent = text || "";
    li.appendChild(name);
    li.appendChild(body);
    var list = log.querySelector(".chat-log");
    (list || log).appendChild(li);
    var empty = log.querySelector(".chat-empty");
    if (empty) empty.remove();
    return body;
  }

  function reload(log, url) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Chat-Stream": "1" } })
      .then(function (r) { return r.text(); })
      .then(function (html) { log.innerHTML = html; });
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.matches || !form.matches("form[data-chat-stream]")) return;
    ev.preventDefault();
    ev.stopPropagation();
    var data = new FormData(form);
    var text = (data.get("text") || "").toString().trim();
    if (!text) return;
    var log = document.getElementById(form.getAttribute("data-chat-log") || "chat");
    var button = form.querySelector("button");
    if (button) button.disabled = true;
    bubble(log, "you", "You", text);
    form.reset();
    fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(data),
      credentials: "same-origin",
      headers: { "X-Chat-Stream": "1", "X-CSRF-Token": (data.get("csrf_token") || "").toString() }
    }).then(function (r) {
      var type = r.headers.get("content-type") || "";
      if (type.indexOf("application/json") === 0) return r.json();
      return r.text().then(function (html) { log.innerHTML = html; return null; });
    }).then(function (turn) {
      if (!turn) { if (button) button.disabled = false; return; }
      var answer = bubble(log, "agent", "Assistant", "");
      var source = new EventSource(turn.stream);
      var finish = function () {
        source.close();
        reload(log, turn.log).then(function () { if (button) button.disabled = false; });
      };
      source.addEventListener("token", function (e) { answer.textContent += JSON.parse(e.data).text; });
      source.addEventListener("tool", function (e) {
        var name = JSON.parse(e.data).name;
        if (form.hasAttribute("data-chat-tools")) bubble(log, "tool", "Tool", name);
      });
      source.addEventListener("done", finish);
      source.addEventListener("failed", finish);
      source.onerror = finish;
    }).catch(function () { form.submit(); });
  }, true);
})();
