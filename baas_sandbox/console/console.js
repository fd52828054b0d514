// baas-sandbox console: a page of the sandbox's own, fed by the admin API (/__admin) and its SSE
// streams, and by the product API with the tenant's token from GET /__admin/tenants. No private
// back door, no third-party code, no build step. Every element is built with textContent: nothing
// the API returns is ever parsed as HTML.
"use strict";

(() => {
  const TOKEN_KEY = "baas-sandbox-admin-token";
  const NS_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;
  const KEY_EVENTS = /^(pix_key|two_step|verification_code|claim|portability|key_)/;

  const state = {
    namespace: "default",
    tenants: [],          // [{name, token, ...}]
    accounts: [],
    keyRequests: [],
    codes: [],            // outbox messages, in order received
    events: [],
    clock: null,          // {now: ms, frozen, offset_seconds, at: performance.now()}
    productOps: new Set(),
    adminOps: new Map(),  // operationId -> {method, path}
    productPaths: {},
    streams: null,        // AbortController of the two streams
    openHistory: new Set(),
    tab: "accounts",
  };

  // ---------- small helpers ----------

  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") el.className = value;
      else if (name === "text") el.textContent = value;
      else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function say(message, kind) {
    const box = $("status");
    box.textContent = message;
    box.className = "status " + (kind || "info");
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  function problemText(body, status) {
    if (body && typeof body === "object") {
      const code = body.code || body.error_code || status;
      const parts = [code, body.message || body.title, body.details || body.detail].filter(Boolean);
      return parts.join(": ");
    }
    return "HTTP " + status;
  }

  function parseTime(text) {
    // The sandbox writes UTC without a zone ("2026-12-02T10:00:00").
    if (!text) return NaN;
    return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : text + "Z");
  }

  function showTime(ms) {
    if (Number.isNaN(ms)) return "—";
    return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }

  function nsNow() {
    const c = state.clock;
    if (!c) return Date.now();
    return c.frozen ? c.now : c.now + (performance.now() - c.at);
  }

  // A list polled or refreshed again is rebuilt only when what it shows changed: a screen reader
  // is not interrupted, an open detail or a focused control is left alone.
  const rendered = new Map();
  function unchanged(name, data) {
    const signature = JSON.stringify([state.namespace, data]);
    if (rendered.get(name) === signature) return true;
    rendered.set(name, signature);
    return false;
  }

  // ---------- HTTP ----------

  function adminHeaders(extra) {
    const headers = Object.assign({"X-Sandbox-Namespace": state.namespace}, extra || {});
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    return headers;
  }

  let tokenPrompt = null;
  function askToken() {
    if (tokenPrompt) return tokenPrompt;
    tokenPrompt = new Promise((resolve) => {
      const dialog = $("token-dialog");
      const form = $("token-form");
      const done = (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
        form.removeEventListener("submit", done);
        dialog.close();
        tokenPrompt = null;
        resolve();
      };
      form.addEventListener("submit", done);
      $("token-input").value = "";
      if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
      $("token-input").focus();
    });
    return tokenPrompt;
  }

  // An admin call: JSON in, JSON out; asks for the admin token on a 401 and tries again.
  async function admin(method, path, body) {
    for (let tries = 0; tries < 3; tries++) {
      const init = {method, headers: adminHeaders()};
      if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
      const response = await fetch("/__admin" + path, init);
      if (response.status === 401) {
        await askToken();
        continue;
      }
      const text = await response.text();
      const data = text ? JSON.parse(text) : null;
      if (!response.ok) throw new ApiError(response.status, data);
      return data;
    }
    throw new ApiError(401, {code: "SBX000401", message: "Unauthorized", details: "admin token refused"});
  }

  class ApiError extends Error {
    constructor(status, body) {
      super(problemText(body, status));
      this.status = status;
      this.body = body;
    }
  }

  function tenantToken(name) {
    const tenant = state.tenants.find((t) => t.name === name);
    if (!tenant) throw new ApiError(0, {message: "unknown tenant " + name});
    return tenant.token;
  }

  // A product API call, as the tenant that owns the account.
  async function product(method, path, tenant, body) {
    const init = {method, headers: {"X-Sandbox-Namespace": state.namespace, Authorization: "Bearer " + tenantToken(tenant)}};
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  async function act(label, action) {
    try {
      const result = await action();
      if (label) say(label, "ok");
      return result;
    } catch (error) {
      say((error.status >= 400 ? "Refused (HTTP " + error.status + "): " : "Failed: ") + error.message, "error");
      return undefined;
    }
  }

  // ---------- SSE, read with fetch (EventSource cannot send the admin token) ----------

  async function follow(path, onFrame, signal) {
    let lastId = null;
    while (!signal.aborted) {
      try {
        const headers = adminHeaders({Accept: "text/event-stream"});
        delete headers["X-Sandbox-Namespace"];  // the query names it, as an EventSource would
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch("/__admin" + path + "?namespace=" + encodeURIComponent(state.namespace),
          {headers, signal, cache: "no-store"});
        if (response.status === 401) { await askToken(); continue; }
        if (!response.ok || !response.body) throw new Error("stream " + response.status);
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, {stream: true}).replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let id = null, data = [];
            for (const line of frame.split("\n")) {
              if (line.startsWith("id:")) id = line.slice(3).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            }
            if (id) lastId = id;
            if (data.length) {
              try { onFrame(JSON.parse(data.join("\n"))); } catch (error) { console.error(error); }
            }
          }
        }
      } catch (error) {
        if (signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  function startStreams() {
    if (state.streams) state.streams.abort();
    state.streams = new AbortController();
    const signal = state.streams.signal;
    follow("/events/stream", onEvent, signal);
    follow("/outbox/stream", onCode, signal);
  }

  // ---------- what the specs offer (panels that depend on endpoints appear when they exist) ----------

  async function loadSpecs() {
    const [productSpec, adminSpec] = await Promise.all([
      fetch("/openapi.json").then((r) => r.json()).catch(() => ({paths: {}})),
      fetch("/__admin/openapi.json", {headers: adminHeaders()}).then((r) => r.json()).catch(() => ({paths: {}})),
    ]);
    for (const [spec, target] of [[productSpec, "product"], [adminSpec, "admin"]]) {
      for (const [path, item] of Object.entries(spec.paths || {})) {
        for (const method of ["get", "post", "put", "patch", "delete"]) {
          const op = item[method];
          if (!op || !op.operationId) continue;
          if (target === "product") {
            state.productOps.add(op.operationId);
            state.productPaths[op.operationId] = {method: method.toUpperCase(), path, op, item: item.parameters || []};
          } else {
            state.adminOps.set(op.operationId, {method: method.toUpperCase(), path, op});
          }
        }
      }
    }
    const select = $("journal-operation");
    for (const id of [...state.productOps].sort()) select.append(h("option", {value: id, text: id}));
  }

  function productOp(predicate) {
    return Object.entries(state.productPaths).find(([id, entry]) => predicate(id, entry));
  }

  function adminPath(predicate) {
    for (const [id, entry] of state.adminOps) if (predicate(id, entry)) return entry;
    return null;
  }

  // ---------- header: namespace, clock, reset ----------

  async function loadNamespaces() {
    const data = await admin("GET", "/namespaces");
    const select = $("namespace-select");
    select.replaceChildren();
    const names = data.namespaces.map((n) => n.name);
    if (!names.includes(state.namespace)) names.push(state.namespace);
    for (const name of names.sort()) {
      const info = data.namespaces.find((n) => n.name === name);
      const label = info ? `${name} (${info.accounts} accounts, ${info.key_requests} key requests)` : name;
      select.append(h("option", {value: name, text: label, selected: name === state.namespace}));
    }
  }

  async function switchNamespace(name) {
    if (!NS_PATTERN.test(name)) {
      say("A namespace name is 1 to 64 of A-Z a-z 0-9 _ . -", "error");
      return;
    }
    state.namespace = name;
    const url = new URL(location.href);
    url.searchParams.set("namespace", name);
    history.replaceState(null, "", url);
    await loadAll();
    say("Namespace " + name, "ok");
  }

  function setClock(data) {
    state.clock = {now: parseTime(data.now), frozen: data.frozen, offset: data.offset_seconds, at: performance.now()};
    renderClock();
    renderCodes();
  }

  function renderClock() {
    const c = state.clock;
    if (!c) return;
    $("clock-now").textContent = showTime(nsNow());
    const offset = c.offset ? ` ${c.offset > 0 ? "+" : ""}${formatSeconds(c.offset)}` : "";
    $("clock-state").textContent = (c.frozen ? "frozen" : "running") + offset;
    $("clock-state").className = "badge " + (c.frozen ? "warn" : "ok");
    $("clock-freeze").textContent = c.frozen ? "Unfreeze" : "Freeze";
    $("clock-freeze").setAttribute("aria-pressed", c.frozen ? "true" : "false");
  }

  function formatSeconds(seconds) {
    const abs = Math.abs(seconds);
    if (abs >= 86400) return (seconds / 86400).toFixed(abs % 86400 ? 1 : 0) + " d";
    if (abs >= 3600) return (seconds / 3600).toFixed(abs % 3600 ? 1 : 0) + " h";
    if (abs >= 60) return (seconds / 60).toFixed(abs % 60 ? 1 : 0) + " min";
    return Math.round(seconds) + " s";
  }

  async function loadClock() {
    setClock(await admin("GET", "/clock"));
  }

  async function clockChanged(data, label) {
    setClock(data);
    say(label + (data.jobs_run ? ` (${data.jobs_run} due job${data.jobs_run > 1 ? "s" : ""} ran)` : ""), "ok");
    scheduleRefresh();
  }

  // ---------- accounts and keys ----------

  async function loadTenants() {
    state.tenants = (await admin("GET", "/tenants")).tenants;
    const select = $("account-tenant");
    const chosen = select.value;
    select.replaceChildren(...state.tenants.map((t) => h("option", {value: t.name, text: t.name, selected: t.name === chosen})));
  }

  async function loadAccounts() {
    state.accounts = (await admin("GET", "/accounts")).accounts;
  }

  async function loadKeyRequests() {
    state.keyRequests = (await admin("GET", "/key-requests")).key_requests;
    renderAccounts();
  }

  const DELETE_OP = () => productOp((id, e) => id === "delete-pix-key" || (e.method === "DELETE" && /pix\/keys\/\{pix_key\}$/.test(e.path)));

  let renderedAccounts = "";
  function renderAccounts() {
    const root = $("accounts");
    // Rebuilt only when something it shows changed: a control being typed in is left alone.
    const history = [...state.openHistory].map((rk) => [rk, state.events.filter((e) => (e.data || {}).pix_key_request_key === rk).length]);
    const signature = JSON.stringify([state.accounts, state.keyRequests, history, !!DELETE_OP()]);
    if (signature === renderedAccounts) return;
    renderedAccounts = signature;
    const focused = document.activeElement && document.activeElement.id;
    const drafts = {};
    root.querySelectorAll("input[id], select[id]").forEach((el) => { drafts[el.id] = el.value; });
    root.replaceChildren();
    const byTenant = new Map();
    for (const account of state.accounts) {
      if (!byTenant.has(account.tenant)) byTenant.set(account.tenant, []);
      byTenant.get(account.tenant).push(account);
    }
    for (const [tenant, accounts] of byTenant) {
      root.append(h("h2", {text: `Tenant ${tenant}`}));
      for (const account of accounts) root.append(accountCard(account));
    }
    for (const [id, value] of Object.entries(drafts)) { const el = $(id); if (el && value) el.value = value; }
    if (focused && $(focused)) $(focused).focus();
  }

  function accountCard(account) {
    const ak = account.account_key;
    const requests = state.keyRequests.filter((r) => r.account_key === ak);
    const title = `${account.owner_name}${account.trading_name ? " (" + account.trading_name + ")" : ""}`;
    const card = h("article", {class: "card account", "data-account-key": ak, "aria-label": "Account " + title},
      h("h3", {}, title, " ", h("span", {class: "badge " + (account.status === "open" ? "ok" : "muted"), text: account.status})),
      h("dl", {class: "facts"},
        h("dt", {text: "account_key"}), h("dd", {}, h("code", {text: ak})),
        h("dt", {text: account.owner_person_type === "legal" ? "CNPJ" : "CPF"}), h("dd", {}, h("code", {class: "document", text: account.owner_document_number})),
        h("dt", {text: "branch / account"}), h("dd", {text: `${account.branch_number} / ${account.account_number}-${account.account_digit} (${account.account_type})`}),
        h("dt", {text: "DICT outcome"}), h("dd", {text: /^[1-5]/.test(account.owner_document_number) ? "rejects its keys (document starts 1–5)" : "approves its keys"}),
      ));
    card.append(keyForm(account));
    if (requests.length) {
      const list = h("ul", {class: "keys", "aria-label": "Key requests of " + title});
      for (const request of requests) list.append(keyItem(account, request));
      card.append(list);
    } else {
      card.append(h("p", {class: "muted", text: "No key requests yet."}));
    }
    return card;
  }

  function keyForm(account) {
    const ak = account.account_key;
    const typeId = "key-type-" + ak, valueId = "key-value-" + ak;
    const docType = account.owner_person_type === "legal" ? "cnpj" : "cpf";
    const value = h("input", {id: valueId, autocomplete: "off", placeholder: "the key (none for random)",
      value: account.owner_person_type === "legal" || account.owner_person_type === "natural" ? account.owner_document_number : ""});
    const type = h("select", {id: typeId},
      ["cnpj", "cpf", "email", "phone_number", "random_key"].map((t) => h("option", {value: t, text: t, selected: t === docType})));
    const fill = () => {
      if (type.value === docType) value.value = account.owner_document_number;
      else if (type.value === "random_key") value.value = "";
      else if (["cpf", "cnpj"].includes(type.value)) value.value = "";
    };
    type.addEventListener("change", fill);
    const form = h("form", {class: "inline-form", "aria-label": "Request a key for " + account.owner_name,
      onsubmit: (event) => {
        event.preventDefault();
        const body = {account_key: ak, pix_key_type: type.value};
        if (type.value !== "random_key") body.pix_key = value.value.trim();
        act("Key requested.", async () => {
          const created = await product("POST", "/baas/pix/keys", account.tenant, body);
          value.value = "";
          await loadKeyRequests();
          return created;
        });
      }},
      h("label", {for: typeId, text: "Key type"}), type,
      h("label", {for: valueId, text: "Key"}), value,
      h("button", {type: "submit", class: "primary", "data-action": "request-key", text: "Request the key"}));
    return form;
  }

  function keyItem(account, request) {
    const rk = request.pix_key_request_key;
    const key = request.pix_key || {};
    const item = h("li", {class: "key", "data-request-key": rk, "data-request-status": request.request_status,
      "data-key-status": key.pix_key_status || ""},
      h("div", {class: "key-head"},
        h("strong", {class: "key-type", text: key.pix_key_type}), " ",
        h("code", {class: "key-value", text: key.pix_key || "(assigned when approved)"}), " ",
        h("span", {class: "badge request-status " + statusClass(request.request_status), text: "request: " + request.request_status}), " ",
        h("span", {class: "badge key-status " + statusClass(key.pix_key_status), text: "key: " + key.pix_key_status}),
        request.claim_lock ? h("span", {class: "badge warn", text: "locked by claim " + request.claim_lock}) : null),
      h("div", {class: "muted small"}, "request ", h("code", {text: rk}), " · created ", showTime(parseTime(request.created_at)),
        request.request_failure_reason ? h("span", {class: "failure", text: " · " + request.request_failure_reason}) : null));
    const actions = h("div", {class: "actions"});
    if (request.request_status === "pending_validation") {
      const codeId = "code-" + rk;
      const code = h("input", {id: codeId, inputmode: "numeric", pattern: "[0-9]{6}", maxlength: "6", autocomplete: "one-time-code", class: "code-input"});
      actions.append(h("form", {class: "inline-form", "aria-label": "Validate the code of " + (key.pix_key || rk),
        onsubmit: (event) => {
          event.preventDefault();
          act("Code accepted: the request goes to DICT.", async () => {
            await product("PATCH", `/baas/pix/keys/${rk}/twofa_validation`, account.tenant, {verification_code: code.value.trim()});
            await loadKeyRequests();
          });
        }},
        h("label", {for: codeId, text: "Verification code"}), code,
        h("button", {type: "submit", "data-action": "validate", text: "Validate"}),
        h("button", {type: "button", "data-action": "resend", text: "Resend the code",
          onclick: () => act("A new code was sent.", async () => {
            await product("PATCH", `/baas/pix/keys/${rk}/resend_twofa`, account.tenant, {});
            await loadKeyRequests();
          })})));
    }
    const del = DELETE_OP();
    if (del && key.pix_key_status === "active" && key.pix_key && !request.claim_lock) {
      actions.append(h("button", {type: "button", class: "danger", "data-action": "delete-key", text: "Delete the key",
        onclick: () => deleteKey(account, request, del)}));
    }
    const historyOpen = state.openHistory.has(rk);
    actions.append(h("button", {type: "button", "data-action": "history", "aria-expanded": historyOpen ? "true" : "false",
      text: historyOpen ? "Hide history" : "History", onclick: () => {
        if (state.openHistory.has(rk)) state.openHistory.delete(rk); else state.openHistory.add(rk);
        renderAccounts();
      }}));
    item.append(actions);
    if (historyOpen) item.append(keyHistory(request));
    return item;
  }

  async function deleteKey(account, request, del) {
    const [, entry] = del;
    const key = request.pix_key.pix_key;
    let path = entry.path.replace(/\{[^}]+\}/g, (name) => {
      if (/request/.test(name)) return encodeURIComponent(request.pix_key_request_key);
      if (/account/.test(name)) return encodeURIComponent(account.account_key);
      return encodeURIComponent(key);
    });
    const params = (entry.op.parameters || []).concat(state.productPaths[del[0]].op.parameters || []);
    const query = new URLSearchParams();
    for (const p of params) {
      if (p.in !== "query" || !p.required) continue;
      if (/account/.test(p.name)) query.set(p.name, account.account_key);
      else if (/reason/.test(p.name)) query.set(p.name, reasonValue(p));
    }
    const body = entry.op.requestBody ? deleteBody(entry.op.requestBody, account, request) : undefined;
    if (query.toString()) path += "?" + query;
    await act("Key deleted.", async () => {
      await product("DELETE", path, account.tenant, body);
      await loadKeyRequests();
    });
  }

  function reasonValue(param) {
    const schema = param.schema || {};
    return (schema.enum && schema.enum[0]) || "user_requested";
  }

  function deleteBody(requestBody, account, request) {
    const schema = ((requestBody.content || {})["application/json"] || {}).schema || {};
    const body = {};
    for (const [name, prop] of Object.entries(schema.properties || {})) {
      if (/account/.test(name)) body[name] = account.account_key;
      else if (/reason/.test(name)) body[name] = (prop.enum && prop.enum[0]) || "user_requested";
      else if (/pix_key$/.test(name)) body[name] = request.pix_key.pix_key;
    }
    return body;
  }

  function keyHistory(request) {
    const rk = request.pix_key_request_key;
    const value = request.pix_key && request.pix_key.pix_key;
    const events = state.events.filter((e) => {
      const d = e.data || {};
      return d.pix_key_request_key === rk || (value && d.pix_key === value);
    });
    const list = h("ol", {class: "history", "aria-label": "History of " + (value || rk)});
    for (const event of events) {
      list.append(h("li", {}, h("details", {},
        h("summary", {}, h("strong", {text: event.event_type}), " · ", showTime(parseTime(event.timestamp))),
        h("pre", {class: "json", text: pretty(event)}))));
    }
    if (!events.length) list.append(h("li", {class: "muted", text: "No data events for this request yet."}));
    return list;
  }

  function statusClass(status) {
    if (["active", "approved", "delivered"].includes(status)) return "ok";
    if (["rejected", "failed", "deleted", "inactive"].includes(status)) return "bad";
    return "warn";
  }

  // CPF and CNPJ with valid check digits, computed here (mod 11, Receita Federal's algorithm).
  function checkDigit(digits, weights) {
    const sum = digits.reduce((total, d, i) => total + d * weights[i], 0) % 11;
    return sum < 2 ? 0 : 11 - sum;
  }

  function makeDocument(kind, outcome) {
    const first = outcome === "reject" ? [1, 2, 3, 4, 5] : [0, 6, 7, 8, 9];
    const random = (n) => Math.floor(Math.random() * n);
    for (;;) {
      const length = kind === "cpf" ? 9 : 12;
      const digits = [first[random(first.length)]];
      while (digits.length < length) digits.push(random(10));
      if (kind === "cnpj") { digits[8] = 0; digits[9] = 0; digits[10] = 0; digits[11] = 1; }  // branch 0001
      if (digits.every((d) => d === digits[0])) continue;
      if (kind === "cpf") {
        digits.push(checkDigit(digits, [10, 9, 8, 7, 6, 5, 4, 3, 2]));
        digits.push(checkDigit(digits, [11, 10, 9, 8, 7, 6, 5, 4, 3, 2]));
      } else {
        digits.push(checkDigit(digits, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]));
        digits.push(checkDigit(digits, [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]));
      }
      return digits.join("");
    }
  }

  function fillDocument() {
    const kind = $("account-type").value === "legal" ? "cnpj" : "cpf";
    $("account-document").value = makeDocument(kind, $("account-outcome").value);
    if (kind === "cnpj" && $("account-name").value === "Maria Souza") $("account-name").value = "Padaria Souza LTDA";
    if (kind === "cpf" && $("account-name").value === "Padaria Souza LTDA") $("account-name").value = "Maria Souza";
  }

  function documentButtonLabel() {
    $("account-generate").textContent = $("account-type").value === "legal" ? "Fill a valid CNPJ" : "Fill a valid CPF";
  }

  // ---------- verification codes ----------

  function onCode(message) {
    if (state.codes.some((m) => m.message_id === message.message_id)) return;
    state.codes.push(message);
    renderCodes();
  }

  function renderCodes() {
    const root = $("codes");
    if (!root) return;
    const now = nsNow();
    const replaced = new Set();
    const latest = new Map();
    for (const m of state.codes) {
      if (latest.has(m.pix_key_request_key)) replaced.add(latest.get(m.pix_key_request_key));
      latest.set(m.pix_key_request_key, m.message_id);
    }
    const items = [...state.codes].reverse().map((m) => {
      const request = state.keyRequests.find((r) => r.pix_key_request_key === m.pix_key_request_key);
      const expired = parseTime(m.expires_at) <= now;
      const status = replaced.has(m.message_id) ? "replaced" : expired ? "expired" : "valid";
      const codeId = "code-value-" + m.message_id;
      return h("li", {class: "card code " + status, "data-message-id": m.message_id,
        "data-request-key": m.pix_key_request_key, "data-code-status": status},
        h("div", {class: "code-head"},
          h("code", {id: codeId, class: "code-value", text: m.verification_code}), " ",
          h("button", {type: "button", "data-action": "copy", "aria-label": `Copy code ${m.verification_code}`, text: "Copy",
            onclick: (event) => copy(m.verification_code, event.currentTarget)}), " ",
          h("span", {class: "badge code-status " + (status === "valid" ? "ok" : "bad"), text: status})),
        h("div", {}, `${m.channel} to `, h("strong", {text: m.destination}),
          request ? ` · ${request.pix_key.pix_key_type} key, request ${request.request_status}` : ""),
        h("div", {class: "muted small"}, "request ", h("code", {text: m.pix_key_request_key}),
          " · sent ", showTime(parseTime(m.sent_at)), " · expires ", showTime(parseTime(m.expires_at))));
    });
    root.replaceChildren(...items);
    if (!items.length) root.append(h("li", {class: "muted", text: "No codes sent yet: request an email or phone key."}));
    $("codes-count").textContent = String(state.codes.filter((m) => parseTime(m.expires_at) > now && !replaced.has(m.message_id)).length || "");
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (_) {
      const area = h("textarea", {class: "visually-hidden", "aria-hidden": "true"});
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "Copied";
    say(`Code ${text} copied.`, "ok");
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  }

  // ---------- events ----------

  function onEvent(event) {
    if (state.events.some((e) => e.event_id === event.event_id)) return;
    state.events.push(event);
    const filter = $("events-filter");
    if (![...filter.options].some((o) => o.value === event.event_type)) {
      filter.append(h("option", {value: event.event_type, text: event.event_type}));
    }
    scheduleEventsRender();
    if (KEY_EVENTS.test(event.event_type)) scheduleRefresh();
  }

  let eventsTimer = null;
  function scheduleEventsRender() {
    if (eventsTimer) return;
    eventsTimer = setTimeout(() => { eventsTimer = null; renderEvents(); }, 100);
  }

  function renderEvents() {
    const type = $("events-filter").value;
    const open = new Set([...$("events").querySelectorAll("details[open]")].map((d) => d.dataset.eventId));
    const shown = state.events.filter((e) => !type || e.event_type === type).slice(-300).reverse();
    $("events").replaceChildren(...shown.map((e) => {
      const d = e.data || {};
      const about = d.pix_key || d.pix_key_request_key || d.provider || "";
      return h("li", {class: "event", "data-event-type": e.event_type},
        h("details", {"data-event-id": e.event_id, open: open.has(e.event_id)},
          h("summary", {}, h("strong", {text: e.event_type}), " · ", showTime(parseTime(e.timestamp)),
            about ? " · " : "", about ? h("code", {text: about}) : null, " · ", e.org_id || ""),
          h("pre", {class: "json", text: pretty(e)})));
    }));
    if (!shown.length) $("events").append(h("li", {class: "muted", text: "No events yet."}));
    $("events-count").textContent = String(state.events.length || "");
    if (state.openHistory.size) renderAccounts();
  }

  // ---------- webhooks ----------

  async function loadSubscriptions() {
    const data = await admin("GET", "/webhooks/subscriptions");
    if (unchanged("subscriptions", data)) return;
    $("subscriptions").replaceChildren(...data.subscriptions.map((s) => h("li", {class: "card", "data-subscription-id": s.id},
      h("div", {}, h("code", {text: s.url}), " ", h("span", {class: "badge " + (s.circuit === "closed" ? "ok" : "warn"), text: "circuit " + s.circuit}),
        " ", h("span", {class: "muted", text: `${s.pending} pending`})),
      h("div", {class: "muted small"}, "events: ", s.events.join(", "), " · since ", showTime(parseTime(s.created_at))),
      h("button", {type: "button", class: "danger", "data-action": "remove-subscription", id: "remove-" + s.id, text: "Remove",
        "aria-label": "Remove the subscription to " + s.url,
        onclick: () => act("Subscription removed.", async () => {
          await admin("DELETE", "/webhooks/subscriptions/" + encodeURIComponent(s.id));
          await loadSubscriptions();
        })}))));
    if (!data.subscriptions.length) $("subscriptions").append(h("li", {class: "muted", text: "No subscriptions."}));
  }

  async function loadDeliveries() {
    const stateFilter = $("deliveries-state").value;
    const data = await admin("GET", "/webhooks/deliveries" + (stateFilter ? "?state=" + stateFilter : ""));
    if (unchanged("deliveries", [stateFilter, data])) return;
    const open = new Set([...$("deliveries").querySelectorAll("details[open]")].map((d) => d.dataset.deliveryId));
    const deliveries = [...data.deliveries].reverse();
    $("deliveries").replaceChildren(...deliveries.map((d) => h("li", {class: "card delivery", "data-delivery-id": d.id, "data-state": d.state},
      h("div", {}, h("strong", {text: d.event_type}), " → ", h("code", {text: d.url}), " ",
        h("span", {class: "badge delivery-state " + statusClass(d.state), text: d.state}), " ",
        h("span", {class: "muted", text: `${d.attempts.length} attempt${d.attempts.length === 1 ? "" : "s"}`})),
      d.reason ? h("div", {class: "failure", text: d.reason}) : null,
      h("table", {class: "table attempts"},
        h("caption", {class: "visually-hidden", text: "Attempts of delivery " + d.id}),
        h("thead", {}, h("tr", {}, h("th", {scope: "col", text: "#"}), h("th", {scope: "col", text: "Time"}),
          h("th", {scope: "col", text: "Status or error"}), h("th", {scope: "col", text: "Duration"}))),
        h("tbody", {}, d.attempts.map((a, i) => h("tr", {class: "attempt"},
          h("td", {text: String(i + 1)}), h("td", {text: showTime(parseTime(a.at))}),
          h("td", {class: a.status && a.status < 300 ? "ok-text" : "bad-text", text: a.status !== null && a.status !== undefined ? "HTTP " + a.status : a.error || "—"}),
          h("td", {text: a.duration_ms !== null && a.duration_ms !== undefined ? a.duration_ms.toFixed(1) + " ms" : "—"}))))),
      h("details", {"data-delivery-id": d.id, open: open.has(d.id)}, h("summary", {text: "Body"}), h("pre", {class: "json", text: pretty(d.body)})),
      h("button", {type: "button", "data-action": "redeliver", id: "redeliver-" + d.id, text: "Redeliver", "aria-label": "Redeliver " + d.event_type + " to " + d.url,
        onclick: () => act("Delivery queued again.", async () => {
          await admin("POST", `/webhooks/deliveries/${encodeURIComponent(d.id)}/redeliver`);
          await loadDeliveries();
        })}))));
    if (!deliveries.length) $("deliveries").append(h("li", {class: "muted", text: "No deliveries."}));
  }

  // ---------- scenarios ----------

  async function loadScenarios(data) {
    data = data || await admin("GET", "/scenarios");
    if (unchanged("scenarios", data)) return;
    const active = data.active;
    $("scenarios-count").textContent = active.length ? String(active.length) : "";
    const refused = data.refused || [];
    $("scenarios-refused").replaceChildren(...refused.map((r) => h("p", {class: "failure", role: "note"},
      "Refused file: ", typeof r === "string" ? r : (r.file || r.name || "") + ": " + (r.problem || r.reason || pretty(r)))));
    $("scenarios").replaceChildren(...data.scenarios.map((s) => {
      const switchId = "scenario-" + s.name;
      const toggle = h("input", {type: "checkbox", role: "switch", id: switchId, checked: s.active, "data-scenario": s.name,
        onchange: (event) => {
          const on = event.currentTarget.checked;
          const names = active.filter((n) => n !== s.name);
          if (on) names.push(s.name);
          act(`Scenario ${s.name} ${on ? "on" : "off"}.`, async () => loadScenarios(await admin("PUT", "/scenarios/active", {names})));
        }});
      return h("li", {class: "card scenario" + (s.active ? " on" : ""), "data-scenario-name": s.name},
        h("div", {class: "switch-row"}, toggle, h("label", {for: switchId}, h("strong", {text: s.name}), s.active ? ` (on, #${active.indexOf(s.name) + 1})` : " (off)")),
        h("p", {text: s.description || ""}),
        s.problem ? h("p", {class: "failure", role: "note", text: "Last edit refused: " + s.problem}) : null,
        h("table", {class: "table rules"},
          h("caption", {class: "visually-hidden", text: "Rules of " + s.name}),
          h("thead", {}, h("tr", {}, ["Rule", "Operations", "Budget", "Effects", "Matched", "Applied"].map((t) => h("th", {scope: "col", text: t})))),
          h("tbody", {}, s.rules.map((r) => h("tr", {},
            h("td", {text: r.name}), h("td", {text: (r.operations || []).join(", ") || "every operation"}), h("td", {text: r.budget}),
            h("td", {text: (r.effects || []).join(", ")}), h("td", {class: "matched", text: String(r.matched)}),
            h("td", {class: "applied", text: String(r.applied)}))))));
    }));
  }

  // ---------- journal ----------

  async function loadJournal() {
    const params = new URLSearchParams();
    if ($("journal-operation").value) params.set("operation_id", $("journal-operation").value);
    if ($("journal-status").value) params.set("status", $("journal-status").value);
    params.set("limit", "200");
    const data = await admin("GET", "/requests?" + params);
    if (unchanged("journal", [String(params), data])) return;
    $("journal").replaceChildren(...data.requests.map((r) => h("tr", {"data-request-id": r.id, "data-status": r.status},
      h("td", {text: showTime(parseTime(r.time))}),
      h("td", {}, h("code", {text: `${r.method} ${r.path}${r.query ? "?" + r.query : ""}`})),
      h("td", {text: r.operation_id || "—"}),
      h("td", {class: r.status < 400 ? "ok-text" : "bad-text", text: String(r.status)}),
      h("td", {text: r.latency_ms !== undefined ? r.latency_ms.toFixed(1) : ""}),
      h("td", {}, h("button", {type: "button", "data-action": "journal-detail", id: "journal-detail-" + r.id, text: "Detail",
        "aria-label": `Detail of ${r.method} ${r.path} (${r.status})`, onclick: () => journalDetail(r)})))));
    if (!data.requests.length) $("journal").append(h("tr", {}, h("td", {colspan: "6", class: "muted", text: "No requests."})));
  }

  function journalDetail(r) {
    const box = $("journal-detail");
    box.replaceChildren(h("article", {class: "card", "aria-label": "Request detail"},
      h("h2", {}, `${r.method} ${r.path} → ${r.status}`),
      h("dl", {class: "facts"},
        h("dt", {text: "time"}), h("dd", {text: showTime(parseTime(r.time))}),
        h("dt", {text: "operation"}), h("dd", {text: r.operation_id || "—"}),
        h("dt", {text: "tracking_id"}), h("dd", {}, h("code", {text: r.tracking_id || "—"})),
        h("dt", {text: "scenario"}), h("dd", {text: r.scenario || "—"}),
        h("dt", {text: "latency"}), h("dd", {text: r.latency_ms + " ms"})),
      h("h3", {text: "Request body" + (r.request_body_cut ? " (cut)" : "")}),
      h("pre", {class: "json request-body", text: r.request_body === null || r.request_body === undefined ? "(none)" : pretty(r.request_body)}),
      h("h3", {text: "Response body" + (r.response_body_cut ? " (cut)" : "")}),
      h("pre", {class: "json response-body", text: r.response_body === null || r.response_body === undefined ? "(none)" : pretty(r.response_body)})));
    box.focus();
  }

  // ---------- claims and rate limits (shown when main's API has them) ----------

  // Claims: the product API's list of each account's claims (as claimer and as donor), with the
  // other bank's side as buttons: every documented /mock/ simulation of a claim.
  async function loadClaims() {
    const root = $("claims");
    const list = state.productPaths["list-account-key-claims"];
    if (!list) {
      root.replaceChildren(h("p", {class: "muted", text: "This sandbox's API has no claims (no list-account-key-claims in its spec)."}));
      return;
    }
    const claims = [];
    for (const account of state.accounts) {
      const path = list.path.replace("{account_key}", encodeURIComponent(account.account_key)) + "?page_size=100";
      try {
        const page = await product("GET", path, account.tenant);
        for (const claim of (page && page.data) || []) claims.push(Object.assign({tenant: account.tenant, owner: account.owner_name}, claim));
      } catch (_) { /* a closed account or one without a person: no claims to show */ }
    }
    if (unchanged("claims", claims)) return;
    const items = claims.map(claimItem);
    root.replaceChildren(h("p", {class: "hint", text: "Claims of this namespace's accounts, as the claimer (claimant) and as the donor, "
      + "with their windows; the buttons play the other bank (the /mock/ simulations of the product API)."}),
      h("ul", {class: "list"}, items.length ? items : h("li", {class: "muted", text: "No claims."})));
  }

  function claimItem(claim) {
    const fields = h("dl", {class: "facts"});
    for (const [name, value] of Object.entries(claim)) {
      if (value !== null && typeof value === "object") continue;
      const shown = /(_date|_at)$/.test(name) && value ? showTime(parseTime(value)) : value === null ? "—" : String(value);
      fields.append(h("dt", {text: name}), h("dd", {text: shown}));
    }
    const key = claim.claim_request_key;
    const item = h("li", {class: "card claim", "data-claim-key": key || "", "data-claim-status": claim.claim_status || ""},
      h("h3", {}, `${claim.claim_type || "claim"} of ${claim.pix_key_type || ""} ${claim.pix_key || ""} `,
        h("span", {class: "badge " + statusClass(claim.claim_status), text: claim.claim_status || ""}), " ",
        h("span", {class: "badge muted", text: claim.claim_flow_type || ""})), fields);
    const actions = h("div", {class: "actions"});
    for (const [id, entry] of Object.entries(state.productPaths)) {
      if (!/^\/mock\//.test(entry.path) || !entry.path.includes("{claim_request_key}") || !key) continue;
      const param = (entry.op.parameters || []).concat(entry.item || []).find((p) => p.name === "claim_action");
      const choices = /\{claim_action\}/.test(entry.path) ? ((param && param.schema && param.schema.enum) || ["confirmed", "cancelled", "failed", "concluded"]) : [null];
      for (const choice of choices) {
        const label = (entry.op.summary || id).replace(/\.$/, "") + (choice ? ": " + choice : "");
        const path = entry.path.replace("{claim_request_key}", encodeURIComponent(key)).replace("{claim_action}", choice || "");
        actions.append(h("button", {type: "button", "data-action": id + (choice ? "-" + choice : ""), text: label,
          onclick: () => act(label + ".", async () => {
            await product(entry.method, path, claim.tenant, entry.op.requestBody ? {} : undefined);
            await loadClaims();
          })}));
      }
    }
    if (actions.childElementCount) item.append(actions);
    return item;
  }

  async function loadRateLimits() {
    const root = $("rate-limits");
    const entry = adminPath((id, e) => id === "list-rate-limits" || (e.method === "GET" && /rate-limits$/.test(e.path)));
    if (!entry) {
      root.replaceChildren(h("p", {class: "muted", text: "This sandbox's API has no rate limits (no GET /__admin/rate-limits in its spec)."}));
      return;
    }
    const data = await admin("GET", "/rate-limits");
    if ($("lookup-box") && unchanged("rate-limits", data)) return;
    const buckets = data.buckets || [];
    const table = h("table", {class: "table buckets"},
      h("caption", {class: "visually-hidden", text: "Anti-scan buckets and their tokens"}),
      h("thead", {}, h("tr", {}, ["Paying account", "Policy", "Tokens", "Refill", "Cost: found / not found"].map((t) => h("th", {scope: "col", text: t})))),
      h("tbody", {}, buckets.map((b) => {
        const account = state.accounts.find((a) => a.account_key === b.account_key);
        const tokens = Math.floor(b.tokens * 10) / 10;
        return h("tr", {"data-bucket": b.account_key, "data-tokens": String(tokens)},
          h("td", {}, account ? account.owner_name : "", " ", h("code", {class: "small", text: b.account_key}), ` (${b.person_type})`),
          h("td", {text: b.policy}),
          h("td", {}, h("meter", {min: "0", max: String(b.capacity), value: String(Math.max(0, b.tokens)),
            "aria-label": `${tokens} of ${b.capacity} tokens`}), ` ${tokens} / ${b.capacity}`),
          h("td", {text: `${b.refill_per_minute} a minute`}),
          h("td", {text: `${b.cost_found} / ${b.cost_not_found}`}));
      })));
    if (!$("lookup-box")) {
      root.replaceChildren(h("p", {class: "hint", text: "DICT's anti-scan limit on key lookups: each paying account has a bucket of tokens, "
        + "refilled on the namespace's clock; a key found costs less than a key not found, an empty bucket answers 429. "
        + "Accounts that looked nothing up since the last reset have full buckets and are not listed."}),
        h("div", {id: "lookup-box"}, lookupForm()), h("div", {id: "buckets"}));
    }
    $("buckets").replaceChildren(buckets.length ? table : h("p", {class: "muted", text: "No lookups since the last reset: every bucket is full."}));
  }

  // A DICT lookup through the product API (GET /baas/pix/keys/{pix_key}), paid from an account's bucket.
  function lookupForm() {
    if (!state.productOps.has("lookup-pix-key")) return h("p", {class: "muted", text: "No key lookup in this sandbox's product API."});
    const payer = h("select", {id: "lookup-account"}, state.accounts.filter((a) => a.status === "open").map((a) =>
      h("option", {value: a.account_key, text: `${a.owner_name} (${a.tenant})`})));
    const key = h("input", {id: "lookup-key", required: true, autocomplete: "off", placeholder: "+5521998765432"});
    return h("div", {},
      h("form", {class: "inline-form", "aria-label": "Look a key up in DICT", onsubmit: (event) => {
        event.preventDefault();
        const account = state.accounts.find((a) => a.account_key === payer.value);
        act("Lookup answered.", async () => {
          let text;
          try {
            const found = await product("GET", `/baas/pix/keys/${encodeURIComponent(key.value.trim())}?account_key=${encodeURIComponent(account.account_key)}`, account.tenant);
            text = found.exists ? `Found: ${found.pix_key_type} key of ${found.name} (${found.masked_document_number}) at ${found.financial_institution}, branch ${found.account_branch}, account ${found.account_number}-${found.account_digit}`
              : `Not found: no one holds ${found.pix_key} in DICT`;
          } catch (error) {
            text = "Refused: " + error.message;
          }
          $("lookup-answer").textContent = text;
          await loadRateLimits();
        });
      }},
      h("label", {for: "lookup-account", text: "Paying account"}), payer,
      h("label", {for: "lookup-key", text: "Key"}), key,
      h("button", {type: "submit", id: "lookup-submit", text: "Look it up"})),
      h("p", {id: "lookup-answer", role: "status", "aria-live": "polite"}));
  }

  // ---------- loading, refreshing ----------

  let refreshTimer = null;
  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(async () => {
      refreshTimer = null;
      await act(null, async () => {
        await loadKeyRequests();
        renderCodes();
        await refreshTab();
      });
    }, 150);
  }

  async function refreshTab() {
    // Lists are rebuilt: the focused control (by id) keeps the focus, for keyboard users.
    const focused = document.activeElement && document.activeElement.id;
    await refreshPanel();
    if (focused && $(focused) && document.activeElement !== $(focused)) $(focused).focus();
  }

  async function refreshPanel() {
    if (state.tab === "webhooks") await Promise.all([loadSubscriptions(), loadDeliveries()]);
    else if (state.tab === "scenarios") await loadScenarios();
    else if (state.tab === "journal") await loadJournal();
    else if (state.tab === "claims") await loadClaims();
    else if (state.tab === "rate-limits") await loadRateLimits();
  }

  async function loadAll() {
    rendered.clear();
    renderedAccounts = "";
    $("rate-limits").replaceChildren();
    state.codes = [];
    state.events = [];
    state.keyRequests = [];
    state.openHistory.clear();
    $("events-filter").replaceChildren(h("option", {value: "", text: "all types"}));
    await act(null, async () => {
      await Promise.all([loadNamespaces(), loadClock(), loadTenants(), loadAccounts()]);
      await loadKeyRequests();
      await loadScenarios();
      renderCodes();
      renderEvents();
      await refreshTab();
    });
    startStreams();
  }

  function showTab(name) {
    const panels = ["accounts", "codes", "claims", "events", "webhooks", "scenarios", "journal", "rate-limits"];
    if (!panels.includes(name)) name = "accounts";
    state.tab = name;
    for (const panel of panels) $("panel-" + panel).hidden = panel !== name;
    document.querySelectorAll("nav.tabs a").forEach((a) => {
      if (a.dataset.tab === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    act(null, refreshTab);
  }

  // ---------- wiring ----------

  function wire() {
    $("namespace-select").addEventListener("change", (e) => switchNamespace(e.target.value));
    $("namespace-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const name = $("namespace-new").value.trim() || $("namespace-select").value;
      $("namespace-new").value = "";
      switchNamespace(name);
    });
    document.querySelectorAll("[data-advance]").forEach((button) => button.addEventListener("click", () => {
      const seconds = Number(button.dataset.advance);
      act(null, async () => clockChanged(await admin("POST", "/clock/advance", {seconds}), "Clock advanced by " + formatSeconds(seconds)));
    }));
    $("clock-freeze").addEventListener("click", () => {
      const frozen = !(state.clock && state.clock.frozen);
      act(null, async () => clockChanged(await admin("PUT", "/clock", {frozen}), frozen ? "Clock frozen" : "Clock running"));
    });
    $("clock-real").addEventListener("click", () => act(null, async () => clockChanged(await admin("DELETE", "/clock"), "Clock back to real time")));
    let armed = null;
    $("reset").addEventListener("click", () => {
      const button = $("reset");
      if (!armed) {
        button.textContent = "Confirm: reset to fixtures";
        armed = setTimeout(() => { armed = null; button.textContent = "Reset namespace"; }, 5000);
        return;
      }
      clearTimeout(armed);
      armed = null;
      button.textContent = "Reset namespace";
      act("Namespace reset to the fixtures.", async () => {
        await admin("POST", "/reset");
        await loadAll();
      });
    });
    $("account-type").addEventListener("change", () => { documentButtonLabel(); $("account-document").value = ""; });
    $("account-generate").addEventListener("click", fillDocument);
    $("account-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const body = {
        tenant: $("account-tenant").value,
        owner_person_type: $("account-type").value,
        owner_document_number: $("account-document").value.trim(),
        owner_name: $("account-name").value.trim(),
        status: $("account-status").value,
      };
      act("Account created.", async () => {
        await admin("POST", "/accounts", body);
        await loadAccounts();
        await loadKeyRequests();
        $("account-document").value = "";
      });
    });
    $("events-filter").addEventListener("change", renderEvents);
    $("subscription-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const body = {url: $("subscription-url").value.trim(),
        events: $("subscription-events").value.split(",").map((s) => s.trim()).filter(Boolean)};
      if ($("subscription-secret").value.trim()) body.secret = $("subscription-secret").value.trim();
      act("Subscription added.", async () => {
        await admin("POST", "/webhooks/subscriptions", body);
        await loadSubscriptions();
      });
    });
    $("deliveries-state").addEventListener("change", () => act(null, loadDeliveries));
    $("deliveries-refresh").addEventListener("click", () => act(null, loadDeliveries));
    $("journal-form").addEventListener("submit", (event) => { event.preventDefault(); act(null, loadJournal); });
    $("journal-operation").addEventListener("change", () => act(null, loadJournal));
    $("journal-clear").addEventListener("click", () => act("Journal cleared.", async () => {
      await admin("DELETE", "/requests");
      $("journal-detail").replaceChildren();
      await loadJournal();
    }));
    window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
    // A page left (or kept in the back/forward cache) closes its two streams: a browser opens at
    // most six connections to a host, and streams left open would starve the next page's calls.
    window.addEventListener("pagehide", () => { if (state.streams) state.streams.abort(); state.streams = null; });
    window.addEventListener("pageshow", (event) => { if (event.persisted) loadAll(); });
    // The clock and the codes' expiry, every second; open panels without a stream, every 2 s.
    setInterval(() => { renderClock(); renderCodes(); }, 1000);
    setInterval(() => { if (!document.hidden && ["webhooks", "scenarios", "journal", "rate-limits", "claims"].includes(state.tab)) act(null, refreshTab); }, 2000);
  }

  async function start() {
    const asked = new URLSearchParams(location.search).get("namespace");
    if (asked && NS_PATTERN.test(asked)) state.namespace = asked;
    wire();
    documentButtonLabel();
    showTab(location.hash.slice(1) || "accounts");
    await act(null, loadSpecs);
    await loadAll();
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
