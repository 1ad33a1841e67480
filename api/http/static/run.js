// The run page, live. The server rendered the stream so far, each row with its seq; this folds
// those rows into the agent/stage tree and the totals, then follows the run's SSE stream from
// the last rendered seq. A seq at or below the last one shown is dropped, so a reconnect or a
// reload never repeats an event, and the stream's `after` cursor means none is lost.
(function () {
  "use strict";

  var page = document.getElementById("run");
  if (!page) { return; }
  var runId = page.dataset.run;
  var last = Number(page.dataset.lastSeq) || 0;
  var list = document.getElementById("events");
  var tree = document.getElementById("tree");
  var liveEl = document.getElementById("live");
  var MAX_TEXT = 4000;
  var RUN_STATUS = {
    "run.queued": "queued", "run.started": "running", "run.resumed": "running", "run.waiting": "waiting",
    "run.completed": "succeeded", "run.failed": "failed", "run.cancelled": "cancelled"
  };
  var ENDS = {"run.completed": true, "run.failed": true, "run.cancelled": true};
  var NODE_STATUS = {
    "stage.started": "running", "agent.started": "running", "stage.completed": "done",
    "agent.completed": "done", "stage.failed": "failed", "agent.failed": "failed",
    "stage.skipped": "skipped", "approval.requested": "waiting", "approval.resolved": "running"
  };
  var totals = {
    tin: Number(page.dataset.hiddenTin) || 0,
    tout: Number(page.dataset.hiddenTout) || 0,
    cost: Number(page.dataset.hiddenCost) || 0
  };
  var nodes = {};          // path -> {status, tin, tout, cost, elements}
  var streaming = {};      // path -> delta rows of the message being streamed there
  var source = null;
  var ended = false;
  var retry = 500;

  // -- one event's text (kept in step with summary() in web.py) --------------------------------

  function text(value) {
    if (value === null || value === undefined) { return ""; }
    var t = typeof value === "string" ? value : JSON.stringify(value, null, 1).replace(/\n */g, " ");
    return t.length <= MAX_TEXT ? t : t.slice(0, MAX_TEXT) + "\u2026";
  }

  function int(v) { return typeof v === "number" && Number.isInteger(v) ? v : 0; }
  function num(v) { return typeof v === "number" && isFinite(v) ? v : 0; }
  function given(v) { return v !== null && v !== undefined && v !== ""; }

  function summary(kind, d) {
    if (kind === "message.delta") { return text(d.text); }
    if (kind === "message.completed") {
      var calls = (d.tool_calls || []).map(function (c) { return String(c && c.name); }).join(", ");
      var content = text(d.content);
      if (calls && content) { return content + " \u2192 calls " + calls; }
      return calls ? "calls " + calls : content;
    }
    if (kind === "tool.call") { return text(d.name + "(" + text(d.arguments || {}) + ")"); }
    if (kind === "tool.result") {
      if ("error" in d) { return text(d.name + " failed: " + text(d.error)); }
      return text(d.name + " \u2192 " + text(d.output));
    }
    if (kind === "handoff") {
      var said = d.reason || d.summary || "";
      return text(d.from + " \u2192 " + d.to + (said ? ": " + text(said) : ""));
    }
    if (kind === "usage") {
      return d.model + ": " + int(d.tokens_in) + " in, " + int(d.tokens_out) + " out, $" + num(d.cost_usd).toFixed(6);
    }
    if (kind === "approval.requested") { return text(d.message || "approve stage " + d.stage + "?"); }
    if (kind === "approval.resolved") {
      return text((d.approved ? "approved" : "rejected") + " by " + d.by + (d.message ? ": " + text(d.message) : ""));
    }
    var keys = ["error", "reason", "output", "task", "input"];
    for (var i = 0; i < keys.length; i++) {
      if (given(d[keys[i]])) { return text(d[keys[i]]); }
    }
    if (kind === "run.started") { return text(d.target); }
    return "";
  }

  function isError(kind, d) {
    return /\.failed$/.test(kind) || kind === "budget.exceeded" || (kind === "tool.result" && "error" in d);
  }

  function el(tag, cls, content) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (content !== undefined) { e.textContent = content; }
    return e;
  }

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function render(ev) {
    var d = ev.data || {};
    var li = el("li", "ev t-" + ev.type.replace(/\./g, "-") + (isError(ev.type, d) ? " err" : ""));
    li.dataset.seq = String(ev.seq);
    li.dataset.type = ev.type;
    li.dataset.path = ev.path || "";
    if (ev.type === "usage") {
      li.dataset.tin = String(int(d.tokens_in));
      li.dataset.tout = String(int(d.tokens_out));
      li.dataset.cost = String(num(d.cost_usd));
    }
    var when = new Date((ev.ts || 0) * 1000);
    li.append(el("span", "seq", String(ev.seq)), " ", el("span", "type", ev.type), " ",
              el("span", "path", ev.path || ""), " ",
              el("span", "time", two(when.getUTCHours()) + ":" + two(when.getUTCMinutes()) + ":" + two(when.getUTCSeconds())),
              el("div", "text", summary(ev.type, d)));
    return li;
  }

  // -- the tree and the totals ----------------------------------------------------------------

  function node(path) {
    if (nodes[path]) { return nodes[path]; }
    var cut = path.lastIndexOf("/");
    var parentList = cut < 0 ? tree : node(path.slice(0, cut)).children;
    var li = el("li", "node");
    li.dataset.node = path;
    var n = {
      status: "", tin: 0, tout: 0, cost: 0, li: li,
      statusEl: el("span", "badge"), tokensEl: el("span", "tokens"), costEl: el("span", "cost"),
      children: el("ul")
    };
    li.append(el("span", "name", path.slice(cut + 1)), " ", n.statusEl, " ", n.tokensEl, " ", n.costEl, n.children);
    parentList.appendChild(li);
    nodes[path] = n;
    return n;
  }

  function setStatus(n, status) {
    n.status = status;
    n.statusEl.textContent = status;
    n.statusEl.className = "badge st-" + status;
    n.li.dataset.status = status;
  }

  function addUsage(path, tin, tout, cost) {
    totals.tin += tin; totals.tout += tout; totals.cost += cost;
    if (!path) { return; }
    var parts = path.split("/");
    for (var i = 1; i <= parts.length; i++) {
      var n = node(parts.slice(0, i).join("/"));
      n.tin += tin; n.tout += tout; n.cost += cost;
      n.tokensEl.textContent = n.tin + "/" + n.tout + " tok";
      n.costEl.textContent = "$" + n.cost.toFixed(6);
    }
  }

  function showTotals() {
    document.getElementById("run-tin").textContent = String(totals.tin);
    document.getElementById("run-tout").textContent = String(totals.tout);
    document.getElementById("run-cost").textContent = totals.cost.toFixed(6);
  }

  function showRunStatus(status) {
    var badge = document.getElementById("run-status");
    badge.textContent = status;
    badge.className = "badge st-" + status;
    page.dataset.status = status;
  }

  function showOutput(value, failed) {
    var box = document.getElementById("output-box");
    var out = document.getElementById("output");
    out.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    out.className = failed ? "error" : "";
    box.hidden = false;
  }

  // -- approvals ------------------------------------------------------------------------------

  function approvalCards() { return document.querySelectorAll("#approval-list .approval"); }

  function dropApproval(path) {
    approvalCards().forEach(function (card) {
      if (path === null || card.dataset.path === path) { card.remove(); }
    });
    document.getElementById("approvals").hidden = approvalCards().length === 0;
  }

  function addApproval(path, d) {
    dropApproval(path);
    var template = document.getElementById("approval-template");
    var card = template.content.firstElementChild.cloneNode(true);
    card.dataset.path = path;
    card.dataset.stage = d.stage || path;
    card.querySelector(".stage").textContent = d.stage || path;
    card.querySelector(".msg").textContent = text(d.message || "");
    card.querySelector(".expires").textContent = d.expiresAt || "";
    document.getElementById("approval-list").appendChild(card);
    document.getElementById("approvals").hidden = false;
  }

  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.classList || !form.classList.contains("answer")) { return; }
    e.preventDefault();
    var card = form.closest(".approval");
    var approve = !(e.submitter && e.submitter.value === "reject");
    var result = form.querySelector(".result");
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    result.textContent = approve ? "approving\u2026" : "rejecting\u2026";
    var body = {decision: approve ? "approve" : "reject", stage: card.dataset.path};
    if (form.elements.message.value) { body.message = form.elements.message.value; }
    fetch("/api/v1/runs/" + encodeURIComponent(runId) + "/approval", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.ok) {
        result.textContent = approve ? "approved" : "rejected";
        card.classList.add("answered");
        return;
      }
      return response.json().then(function (problem) {
        return problem.detail || problem.title || response.statusText;
      }, function () { return response.statusText; }).then(function (why) {
        result.textContent = "refused: " + why;
        buttons.forEach(function (b) { b.disabled = false; });
      });
    }, function () {
      result.textContent = "could not reach the server";
      buttons.forEach(function (b) { b.disabled = false; });
    });
  });

  // -- folding one event into the page --------------------------------------------------------

  function fold(type, path, d, row) {
    if (RUN_STATUS[type]) { showRunStatus(RUN_STATUS[type]); }
    if (NODE_STATUS[type] && path) { setStatus(node(path), NODE_STATUS[type]); }
    if (type === "usage") { addUsage(path, int(d.tokens_in), int(d.tokens_out), num(d.cost_usd)); }
    if (type === "message.delta") {
      if (!row.classList.contains("spent")) { (streaming[path] = streaming[path] || []).push(row); }
    } else if (type === "message.completed") {
      (streaming[path] || []).forEach(function (r) { r.classList.add("spent"); });
      delete streaming[path];
    }
  }

  function foldLive(ev) {
    var d = ev.data || {};
    var row = render(ev);
    row.classList.add("live");   // drawn here, not by the server (tests tell the two apart)
    list.appendChild(row);
    fold(ev.type, ev.path || "", d, row);
    if (ev.type === "approval.requested") { addApproval(ev.path, d); }
    if (ev.type === "approval.resolved" || /^stage\.(completed|failed|skipped)$/.test(ev.type)) { dropApproval(ev.path); }
    if (ENDS[ev.type]) { dropApproval(null); }
    if (ev.type === "run.completed") { showOutput(d.output, false); }
    if (ev.type === "run.failed") { showOutput(d.error, true); }
    if (ev.type === "run.cancelled") { showOutput(d.reason || "cancelled", true); }
    showTotals();
  }

  function accept(ev) {
    if (!ev || typeof ev.seq !== "number" || ev.seq <= last) { return; }   // shown already
    last = ev.seq;
    page.dataset.lastSeq = String(last);
    foldLive(ev);
    if (ENDS[ev.type]) { finish(); }
  }

  function onMessage(message) {
    var ev;
    try { ev = JSON.parse(message.data); } catch (err) { return; }
    accept(ev);
  }

  // -- following the stream -------------------------------------------------------------------

  function setLive(state) {
    liveEl.textContent = state;
    liveEl.dataset.state = state;
  }

  function finish() {
    ended = true;
    if (source) { source.close(); source = null; }
    setLive("");
  }

  var eventsUrl = "/api/v1/runs/" + encodeURIComponent(runId) + "/events";

  function connect() {
    if (ended) { return; }
    // The cursor is in the URL; when the browser reconnects by itself it sends Last-Event-ID,
    // which the server prefers. Either way the stream resumes after the last seq received.
    source = new EventSource(eventsUrl + "?after=" + last);
    source.onopen = function () { retry = 500; setLive("live"); };
    source.onmessage = onMessage;
    source.addEventListener("end", function () { catchUp(); });
    source.onerror = function () {
      if (ended) { return; }
      setLive("reconnecting");
      if (source && source.readyState === EventSource.CONNECTING) { return; }   // the browser retries
      if (source) { source.close(); source = null; }
      setTimeout(catchUp, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  function getJson(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}}).then(function (r) {
      return r.ok ? r.json() : Promise.reject(new Error(String(r.status)));
    });
  }

  // The stream closed (it ended, or the server refused it): read what is left as JSON pages,
  // then follow again unless the run is over.
  function catchUp() {
    if (source) { source.close(); source = null; }
    if (ended) { return; }
    getJson(eventsUrl + "?after=" + last + "&limit=1000").then(function (pageOfEvents) {
      pageOfEvents.items.forEach(accept);
      if (ended) { return; }
      if (pageOfEvents.more) { catchUp(); return; }
      return getJson("/api/v1/runs/" + encodeURIComponent(runId)).then(function (run) {
        if (run.status === "succeeded" || run.status === "cancelled" ||
            (run.status === "failed" && run.finishedAt)) {
          showRunStatus(run.status);
          finish();
        } else {
          connect();
        }
      });
    }).catch(function (err) {
      if (err.message === "401") { signedOut(); return; }
      setLive("reconnecting");
      setTimeout(catchUp, retry);
      retry = Math.min(retry * 2, 10000);
    });
  }

  // The server no longer knows this browser's session (it restarted, or the token was
  // revoked): following stops until the user logs in again, then the page picks up from here.
  function signedOut() {
    if (source) { source.close(); source = null; }
    setLive("signed out");
    var next = location.pathname + location.search;
    var link = el("a", "", "log in again");
    link.href = "/login?next=" + encodeURIComponent(next);
    liveEl.append(" \u2014 ", link);
  }

  // The rows rendered by the server: fold them without drawing them again.
  list.querySelectorAll("li.ev").forEach(function (row) {
    var d = row.dataset.type !== "usage" ? {} :
      {tokens_in: Number(row.dataset.tin), tokens_out: Number(row.dataset.tout), cost_usd: Number(row.dataset.cost)};
    fold(row.dataset.type, row.dataset.path, d, row);
  });
  showTotals();
  var status = page.dataset.status;
  if (status === "succeeded" || status === "failed" || status === "cancelled") {
    ended = true;
  } else {
    connect();
  }
})();
