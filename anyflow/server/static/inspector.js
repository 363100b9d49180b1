// The anyflow run inspector: a page over the server's own HTTP API.
//
// Plain browser JavaScript, no build step and nothing fetched from elsewhere:
// the page must work offline, next to the server that serves it.
//
// Rules this file keeps:
// 1. Server data never goes through innerHTML: elements are built with h(),
//    and text lands in text nodes (textContent, append of strings).
// 2. Every request goes through api(), which adds `Authorization: Bearer` when
//    a token is known and, on a 401, asks for one and tries again.
// 3. Live events are read by one small SSE reader over fetch() (readSse), not
//    EventSource: EventSource cannot send the Authorization header, and one
//    path for open and token-protected servers is simpler than two.  It
//    resumes after the last sequence number it saw if the stream breaks.
// 4. Stale answers are dropped: a response about a run or workflow that is no
//    longer selected changes nothing.
"use strict";

(() => {
  const TOKEN_KEY = "anyflow.inspector.token";
  const POLL_MS = 2000;
  const FRAMEWORK_EVENTS = new Set(["StartEvent", "StopEvent", "InputRequiredEvent", "HumanResponseEvent"]);
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);

  const state = {
    workflows: [],
    current: null, // the workflow whose start form and graph are shown
    info: new Map(), // workflow name -> Promise<{schema, graph, events}>
    runsKey: "",
    selected: null, // handler id
    view: null, // the selected handler as GET /handlers/{id} shows it
    events: [], // [{seq, ev}] of the selected run
    seen: new Set(), // event type names seen in the selected run
    follow: null, // AbortController of the selected run's stream
    answeredSeq: null, // sequence number of the question last answered
    answerSeq: null, // sequence number of the question the answer form is for
    answerCollect: null,
    startCollect: null,
  };

  // Building elements (rule 1).

  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    setProps(el, props);
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) el.append(child);
    }
    return el;
  }

  function svg(tag, props, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setProps(el, props);
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) el.append(child);
    }
    return el;
  }

  function setProps(el, props) {
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") el.textContent = String(value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "checked" || key === "value") el[key] = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }

  function show(el, visible) {
    el.hidden = !visible;
  }

  function compact(value) {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }

  function shortId(id) {
    return id.length > 10 ? `${id.slice(0, 8)}…` : id;
  }

  function time(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
  }

  const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Requests (rule 2).

  let memoryToken = null; // when sessionStorage is unavailable
  let tokenWanted = null; // the pending Promise of the token dialog

  function getToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return memoryToken;
    }
  }

  function setToken(token) {
    memoryToken = token;
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage disabled: the token lives as long as the page
    }
    show($("forget-token"), Boolean(token));
  }

  function askToken(refused) {
    if (tokenWanted) return tokenWanted;
    if (refused) setToken(null);
    const dialog = $("token-dialog");
    $("token-why").textContent = refused
      ? "The server refused the token; enter another one."
      : "Requests are refused without Authorization: Bearer. The token is kept in this tab only (sessionStorage).";
    tokenWanted = new Promise((resolve) => {
      const form = $("token-form");
      const done = (event) => {
        event.preventDefault();
        const token = $("token-input").value.trim();
        if (!token) return;
        form.removeEventListener("submit", done);
        setToken(token);
        $("token-input").value = "";
        dialog.close();
        tokenWanted = null;
        resolve();
      };
      form.addEventListener("submit", done);
    });
    if (!dialog.open) dialog.showModal();
    $("token-input").focus();
    return tokenWanted;
  }

  async function api(path, { method = "GET", json, headers = {}, signal } = {}) {
    for (;;) {
      const sent = getToken();
      const all = new Headers(headers);
      if (sent) all.set("Authorization", `Bearer ${sent}`);
      const init = { method, headers: all, signal, cache: "no-store" };
      if (json !== undefined) {
        all.set("Content-Type", "application/json");
        init.body = JSON.stringify(json);
      }
      const response = await fetch(path, init);
      if (response.status !== 401) return response;
      await askToken(Boolean(sent) && sent === getToken());
    }
  }

  async function problem(response) {
    let detail = "";
    try {
      const body = await response.json();
      detail = typeof body.detail === "string" ? body.detail : compact(body.detail ?? body);
    } catch {
      detail = response.statusText;
    }
    return `${response.status}: ${detail}`;
  }

  async function getJson(path) {
    const response = await api(path);
    if (!response.ok) throw new Error(await problem(response));
    return response.json();
  }

  function workflowInfo(name) {
    let info = state.info.get(name);
    if (!info) {
      const enc = encodeURIComponent(name);
      info = Promise.all([
        getJson(`/workflows/${enc}/schema`),
        getJson(`/workflows/${enc}/representation`),
        getJson(`/workflows/${enc}/events`),
      ]).then(([schema, representation, events]) => ({
        schema,
        graph: representation.graph,
        events: events.events || [],
      }));
      info.catch(() => state.info.delete(name)); // try again next time
      state.info.set(name, info);
    }
    return info;
  }

  // Forms derived from JSON schemas.

  class FormError extends Error {
    constructor(message, element) {
      super(message);
      this.element = element;
    }
  }

  function resolveRef(schema, root) {
    const ref = schema && schema.$ref;
    if (typeof ref === "string" && ref.startsWith("#/$defs/") && root.$defs) {
      return root.$defs[ref.slice("#/$defs/".length)] || {};
    }
    return schema || {};
  }

  // What input a property gets: {kind, type, nullable, schema}.
  function fieldKind(property, root) {
    let schema = resolveRef(property, root);
    let nullable = false;
    const options = schema.anyOf || schema.oneOf;
    if (Array.isArray(options)) {
      const solid = options.filter((o) => !(o && o.type === "null"));
      nullable = solid.length < options.length;
      if (solid.length !== 1) return { kind: "json", nullable, schema };
      schema = resolveRef(solid[0], root);
    }
    let type = schema.type;
    if (Array.isArray(type)) {
      nullable = nullable || type.includes("null");
      const solid = type.filter((t) => t !== "null");
      type = solid.length === 1 ? solid[0] : undefined;
      if (solid.length > 1) return { kind: "json", nullable, schema };
    }
    if (Array.isArray(schema.enum)) return { kind: "enum", type, nullable, schema };
    if (type === "boolean") return { kind: "boolean", type, nullable, schema };
    if (type === "integer" || type === "number") return { kind: "number", type, nullable, schema };
    if (type === "string") return { kind: "text", type, nullable, schema };
    if (type === "object" || type === "array" || schema.properties || schema.items) {
      return { kind: "json", type, nullable, schema };
    }
    return { kind: "text", type: undefined, nullable, schema }; // "anything": sent as text
  }

  // Fills `container` with one input per property of `schema`, and a free JSON
  // field if `free`; returns collect(), which gives the fields' object or
  // throws a FormError naming the field at fault.
  function schemaForm(container, schema, { prefix, free, values = {} }) {
    container.replaceChildren();
    const root = schema || {};
    const properties = root.properties || {};
    const required = new Set(root.required || []);
    const readers = [];
    for (const [name, property] of Object.entries(properties)) {
      const id = `${prefix}-field-${name}`;
      const { kind, type, nullable, schema: s } = fieldKind(property, root);
      const must = required.has(name);
      const hintId = s.description || property.description ? `${id}-hint` : null;
      const hint = hintId ? h("p", { id: hintId, class: "hint", text: s.description || property.description }) : null;
      const initial = Object.hasOwn(values, name) ? values[name] : undefined;
      const mark = must ? h("span", { class: "required", "aria-hidden": "true", text: " *" }) : null;
      let input;
      if (kind === "boolean") {
        const start = initial !== undefined ? initial === true : property.default === true;
        input = h("input", { id, type: "checkbox", checked: start, "aria-describedby": hintId });
        container.append(h("div", { class: "field check" }, input, h("label", { for: id, text: name }), hint));
        readers.push(() => [name, input.checked]);
        continue;
      }
      if (kind === "enum") {
        input = h("select", { id, required: must, "aria-describedby": hintId });
        if (!must) input.append(h("option", { value: "", text: "(default)" }));
        s.enum.forEach((option, i) => input.append(h("option", { value: String(i), text: compact(option) })));
        const at = s.enum.findIndex((o) => compact(o) === compact(initial ?? property.default));
        if (at >= 0) input.value = String(at);
        readers.push(() => (input.value === "" ? null : [name, s.enum[Number(input.value)]]));
      } else if (kind === "number") {
        input = h("input", {
          id,
          type: "number",
          step: type === "integer" ? "1" : "any",
          required: must,
          placeholder: property.default !== undefined && property.default !== null ? String(property.default) : null,
          value: initial !== undefined && initial !== null ? String(initial) : null,
          "aria-describedby": hintId,
        });
        readers.push(() => {
          if (input.value.trim() === "") {
            if (must) throw new FormError(`${name} is required`, input);
            return nullable && Object.hasOwn(values, name) ? [name, null] : null;
          }
          const number = Number(input.value);
          if (!Number.isFinite(number)) throw new FormError(`${name} must be a number`, input);
          if (type === "integer" && !Number.isInteger(number)) {
            throw new FormError(`${name} must be a whole number`, input);
          }
          return [name, number];
        });
      } else if (kind === "json") {
        input = h("textarea", {
          id,
          rows: 3,
          spellcheck: "false",
          required: must,
          placeholder: type === "array" ? "[ ]" : "{ }",
          value: initial !== undefined ? JSON.stringify(initial, null, 2) : null,
          "aria-describedby": hintId,
        });
        readers.push(() => {
          const text = input.value.trim();
          if (!text) {
            if (must) throw new FormError(`${name} is required (JSON)`, input);
            return null;
          }
          try {
            return [name, JSON.parse(text)];
          } catch (error) {
            throw new FormError(`${name} is not valid JSON: ${error.message}`, input);
          }
        });
      } else {
        const start = initial !== undefined && initial !== null ? (typeof initial === "string" ? initial : compact(initial)) : null;
        input = h("input", {
          id,
          type: "text",
          required: must,
          autocomplete: "off",
          placeholder: typeof property.default === "string" ? property.default : null,
          value: start,
          "aria-describedby": hintId,
        });
        readers.push(() => {
          if (input.value === "") {
            if (must) throw new FormError(`${name} is required`, input);
            return null;
          }
          return [name, input.value];
        });
      }
      const label = h("span", {}, h("label", { for: id, text: name }), mark);
      const typeNote = h("span", { class: "type", "aria-hidden": "true", text: type || (kind === "json" ? "json" : "") });
      container.append(h("div", { class: "field" }, h("div", { class: "label-row" }, label, typeNote), input, hint));
    }
    let extra = null;
    if (free) {
      const id = `${prefix}-extra`;
      extra = h("textarea", {
        id,
        rows: 3,
        spellcheck: "false",
        placeholder: '{"name": "value"}',
        "aria-describedby": `${id}-hint`,
      });
      container.append(
        h(
          "div",
          { class: "field" },
          h("label", { for: id, text: "Extra fields (JSON)" }),
          extra,
          h("p", { id: `${id}-hint`, class: "hint", text: "A JSON object of more fields; they win over the inputs above." }),
        ),
      );
    }
    if (!Object.keys(properties).length && !free) {
      container.append(h("p", { class: "muted", text: "This event has no fields." }));
    }
    return () => {
      for (const el of container.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
      const out = {};
      try {
        for (const read of readers) {
          const entry = read();
          if (entry) out[entry[0]] = entry[1];
        }
        if (extra && extra.value.trim()) {
          let more;
          try {
            more = JSON.parse(extra.value);
          } catch (error) {
            throw new FormError(`Extra fields are not valid JSON: ${error.message}`, extra);
          }
          if (more === null || typeof more !== "object" || Array.isArray(more)) {
            throw new FormError("Extra fields must be a JSON object", extra);
          }
          Object.assign(out, more);
        }
      } catch (error) {
        if (error instanceof FormError && error.element) {
          error.element.setAttribute("aria-invalid", "true");
          error.element.focus();
        }
        throw error;
      }
      return out;
    };
  }

  // Workflows and the start form.

  async function loadWorkflows() {
    const body = await getJson("/workflows");
    state.workflows = body.workflows || [];
    const list = $("workflows");
    list.replaceChildren(
      ...state.workflows.map((name) =>
        h("li", {}, h("button", { type: "button", "aria-pressed": "false", "data-workflow": name, onclick: () => selectWorkflow(name), text: name })),
      ),
    );
    if (!state.workflows.length) list.append(h("li", { class: "muted", text: "No workflows are served." }));
  }

  async function selectWorkflow(name) {
    if (!state.workflows.includes(name)) return;
    const changed = state.current !== name;
    state.current = name;
    for (const button of $("workflows").querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.workflow === name));
    }
    if (!changed && state.startCollect) return;
    show($("start-section"), true);
    $("start-title").textContent = `Start a run of ${name}`;
    $("start-error").textContent = "";
    $("start-fields").replaceChildren(h("p", { class: "muted", text: "loading…" }));
    let info;
    try {
      info = await workflowInfo(name);
    } catch (error) {
      if (state.current === name) $("start-error").textContent = `Cannot read ${name}: ${error.message}`;
      return;
    }
    if (state.current !== name) return;
    const start = info.schema.start || {};
    const about = [start.title ? `Start event: ${start.title}.` : "", firstParagraph(info.graph && info.graph.description)];
    $("start-about").textContent = about.filter(Boolean).join(" ");
    state.startCollect = schemaForm($("start-fields"), start, { prefix: "start", free: start.additionalProperties === true });
    drawGraph(info.graph);
  }

  function firstParagraph(text) {
    if (typeof text !== "string") return "";
    return text.split(/\n\s*\n/)[0].replace(/``([^`]+)``/g, "$1").replace(/\s+/g, " ").trim();
  }

  async function startRun(event) {
    event.preventDefault();
    const name = state.current;
    const error = $("start-error");
    error.textContent = "";
    if (!name || !state.startCollect) return;
    let fields;
    try {
      fields = state.startCollect();
    } catch (failure) {
      error.textContent = failure.message;
      return;
    }
    const button = $("start-button");
    button.disabled = true;
    try {
      const response = await api(`/workflows/${encodeURIComponent(name)}/run-nowait`, {
        method: "POST",
        json: { start_event: fields },
      });
      if (!response.ok) {
        error.textContent = await problem(response);
        return;
      }
      const view = await response.json();
      selectRun(view.handler_id, view);
      await refreshRuns();
    } catch (failure) {
      error.textContent = `The server could not be reached: ${failure.message}`;
    } finally {
      button.disabled = false;
    }
  }

  // Runs.

  async function refreshRuns() {
    const query = new URLSearchParams();
    const status = $("runs-status").value;
    if (status) query.set("status", status);
    const body = await getJson(`/handlers${query.toString() ? `?${query}` : ""}`);
    const runs = (body.handlers || []).slice().sort((a, b) => (a.started_at < b.started_at ? 1 : -1));
    const key = compact([state.selected, runs.map((r) => [r.handler_id, r.workflow_name, r.status])]);
    const selected = runs.find((r) => r.handler_id === state.selected);
    if (selected && state.view && selected.status !== state.view.status) showView(selected);
    if (key === state.runsKey) return;
    state.runsKey = key;
    const rows = runs.map((run) => {
      const id = run.handler_id;
      const current = id === state.selected;
      return h(
        "tr",
        { "aria-current": current ? "true" : null, class: current ? "selected" : null, onclick: (e) => e.target.closest("button") || selectRun(id) },
        h("td", {}, h("button", { type: "button", class: "link mono", title: id, onclick: () => selectRun(id), text: shortId(id) })),
        h("td", { text: run.workflow_name }),
        h("td", {}, badge(run.status)),
        h("td", { title: run.started_at, text: time(run.started_at) }),
      );
    });
    $("runs-body").replaceChildren(...rows);
    show($("runs-empty"), !rows.length);
    $("runs-empty").textContent = status ? `No ${status} runs.` : "No runs yet.";
  }

  function badge(status) {
    return h("span", { class: `badge status-${status}`, text: status });
  }

  function markSelectedRow() {
    state.runsKey = ""; // redraw at the next refresh
    for (const row of $("runs-body").rows) {
      const button = row.querySelector("button");
      const current = Boolean(button) && button.title === state.selected;
      row.classList.toggle("selected", current);
      if (current) row.setAttribute("aria-current", "true");
      else row.removeAttribute("aria-current");
    }
  }

  // The selected run.

  function selectRun(id, view) {
    if (state.selected === id) {
      if (view) showView(view);
      return;
    }
    if (state.follow) state.follow.abort();
    state.selected = id;
    state.view = null;
    state.events = [];
    state.seen = new Set();
    state.answeredSeq = null;
    state.answerSeq = null;
    history.replaceState(null, "", `#run=${encodeURIComponent(id)}`);
    show($("run-none"), false);
    show($("run-detail"), true);
    $("run-title").textContent = `Run ${shortId(id)}`;
    $("run-id").textContent = id;
    $("run-workflow").textContent = view ? view.workflow_name : "";
    $("run-status").replaceChildren(view ? badge(view.status) : "loading…");
    $("run-problem").textContent = "";
    $("events").replaceChildren();
    $("events-state").textContent = "";
    show($("answer-form"), false);
    markSelectedRow();
    highlightSeen();
    if (view) showView(view);
    follow(id);
    refreshRun(id).catch((error) => {
      if (state.selected === id) $("run-problem").textContent = `The server could not be reached: ${error.message}`;
    });
  }

  async function refreshRun(id = state.selected) {
    if (!id) return null;
    const response = await api(`/handlers/${encodeURIComponent(id)}`);
    if (state.selected !== id) return null;
    if (response.status === 404) {
      $("run-problem").textContent = "This run does not exist (any more).";
      $("run-status").replaceChildren("unknown");
      show($("cancel-run"), false);
      return null;
    }
    let view = null;
    try {
      view = await response.json();
    } catch {
      view = null;
    }
    if (state.selected !== id) return null;
    if (!view || view.handler_id !== id) {
      $("run-problem").textContent = await problem(response);
      return null;
    }
    showView(view);
    return view;
  }

  function showView(view) {
    if (view.handler_id !== state.selected) return;
    state.view = view;
    $("run-workflow").textContent = view.workflow_name;
    $("run-status").replaceChildren(badge(view.status));
    const times = [`started ${time(view.started_at)}`];
    if (view.completed_at) {
      const took = (new Date(view.completed_at) - new Date(view.started_at)) / 1000;
      times.push(`finished ${time(view.completed_at)}${Number.isFinite(took) ? ` (${took.toFixed(2)} s)` : ""}`);
    }
    $("run-times").textContent = times.join(" · ");
    const result = view.result ? resultText(view.result) : "";
    $("run-result").textContent = result;
    show($("run-result"), Boolean(view.result));
    show($("run-result-label"), Boolean(view.result));
    $("run-error").textContent = view.error || "";
    show($("run-error"), Boolean(view.error));
    show($("run-error-label"), Boolean(view.error));
    show($("cancel-run"), view.status === "running");
    if (state.workflows.includes(view.workflow_name) && state.current !== view.workflow_name) {
      selectWorkflow(view.workflow_name);
    }
    updateAnswer();
  }

  function resultText(result) {
    const value = result.value || {};
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "result") {
      return typeof value.result === "string" ? value.result : compact(value.result);
    }
    return `${result.type} ${compact(value)}`;
  }

  function isStop(ev) {
    return ev.type === "StopEvent" || (Array.isArray(ev.types) && ev.types.includes("StopEvent"));
  }

  function isInputRequired(ev) {
    return ev.type === "InputRequiredEvent" || (Array.isArray(ev.types) && ev.types.includes("InputRequiredEvent"));
  }

  function addEvent(seq, ev) {
    state.events.push({ seq, ev });
    state.seen.add(ev.type);
    const kinds = [ev.type, ...(Array.isArray(ev.types) ? ev.types : [])].join(" ← ");
    const classes = ["event"];
    if (isStop(ev)) classes.push("stop");
    if (isInputRequired(ev)) classes.push("input");
    $("events").append(
      h(
        "li",
        { class: classes.join(" "), "data-seq": seq },
        h("span", { class: "seq", "aria-label": `sequence ${seq}`, text: `#${seq}` }),
        h("span", { class: "type", title: ev.qualified_name || kinds, text: ev.type }),
        h("code", { class: "value", text: compact(ev.value) }),
      ),
    );
    highlightSeen();
    updateAnswer();
  }

  // Rule 3: the run's events, live, from one SSE reader over fetch.
  async function follow(id) {
    const controller = new AbortController();
    state.follow = controller;
    const { signal } = controller;
    const status = $("events-state");
    let after = -1;
    let pause = 500;
    try {
      for (;;) {
        status.textContent = "live";
        let response;
        try {
          response = await api(`/events/${encodeURIComponent(id)}?after_sequence=${after}`, {
            headers: { Accept: "text/event-stream" },
            signal,
          });
        } catch (error) {
          if (signal.aborted) return;
          status.textContent = `disconnected (${error.message}); trying again…`;
          await delay(pause);
          pause = Math.min(pause * 2, 5000);
          continue;
        }
        if (response.status === 204) break; // finished, nothing left after `after`
        if (!response.ok) {
          status.textContent = `no events: ${await problem(response)}`;
          return;
        }
        let stopped = false;
        try {
          for await (const frame of readSse(response.body)) {
            if (frame.id !== null && /^-?\d+$/.test(frame.id)) after = Number(frame.id);
            if (!frame.data) continue;
            let ev;
            try {
              ev = JSON.parse(frame.data);
            } catch {
              continue;
            }
            if (signal.aborted) return;
            addEvent(after, ev);
            if (isStop(ev)) stopped = true;
          }
        } catch (error) {
          if (signal.aborted) return;
          status.textContent = `stream broken (${error.message}); resuming…`;
        }
        if (stopped) break;
        await delay(pause); // the stream ended early (server restart): resume after `after`
        pause = Math.min(pause * 2, 5000);
      }
      if (signal.aborted) return;
      status.textContent = "The run has ended.";
      // Its end may still be being recorded: look until the status says so.
      for (let i = 0; i < 20 && state.selected === id; i += 1) {
        const view = await refreshRun(id);
        if (!view || view.status !== "running") break;
        await delay(150);
      }
      refreshRuns().catch(() => {});
    } finally {
      if (state.follow === controller) state.follow = null;
    }
  }

  // Server-sent events from a fetch() body: yields {id, data} per frame.
  async function* readSse(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let data = [];
    let id = null;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
        for (;;) {
          const end = buffer.search(/\r\n|\r|\n/);
          if (end < 0) break;
          if (!done && buffer[end] === "\r" && end === buffer.length - 1) break; // a \n may follow
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
          if (line === "") {
            if (data.length || id !== null) yield { id, data: data.join("\n") };
            data = [];
            id = null;
            continue;
          }
          if (line.startsWith(":")) continue; // a comment: the server's heartbeat
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "data") data.push(text);
          else if (field === "id") id = text;
        }
        if (done) return; // an unfinished frame at the end is dropped, as EventSource does
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  async function cancelRun() {
    const id = state.selected;
    if (!id) return;
    const button = $("cancel-run");
    button.disabled = true;
    $("run-problem").textContent = "";
    try {
      const response = await api(`/handlers/${encodeURIComponent(id)}/cancel`, { method: "POST" });
      if (!response.ok) $("run-problem").textContent = await problem(response);
      await refreshRun(id);
      await refreshRuns();
    } catch (error) {
      $("run-problem").textContent = `The server could not be reached: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  // Answering an InputRequiredEvent.

  function waitingQuestion() {
    const last = state.events[state.events.length - 1];
    if (!last || !isInputRequired(last.ev) || last.seq === state.answeredSeq) return null;
    if (state.view && state.view.status !== "running") return null;
    return last;
  }

  function guessAnswerType(events, question) {
    const asked = new Set(Object.keys(question.value || {}));
    let best = null;
    let bestScore = -1;
    for (const schema of events) {
      const props = schema.properties || {};
      if (!schema.title || FRAMEWORK_EVENTS.has(schema.title) || !Object.hasOwn(props, "response")) continue;
      const score = Object.keys(props).filter((k) => asked.has(k)).length;
      if (score > bestScore) [best, bestScore] = [schema.title, score];
    }
    if (best) return best;
    return events.some((s) => s.title === "HumanResponseEvent") ? "HumanResponseEvent" : "";
  }

  async function updateAnswer() {
    const form = $("answer-form");
    const question = waitingQuestion();
    if (!question) {
      show(form, false);
      state.answerSeq = null;
      return;
    }
    if (state.answerSeq === question.seq) return; // shown already: keep what was typed
    const id = state.selected;
    const name = state.view ? state.view.workflow_name : state.current;
    let events = [];
    try {
      events = name ? (await workflowInfo(name)).events : [];
    } catch {
      events = [];
    }
    if (state.selected !== id || waitingQuestion() !== question || state.answerSeq === question.seq) return;
    state.answerSeq = question.seq;
    const value = question.ev.value || {};
    $("answer-prompt").textContent =
      typeof value.prefix === "string" && value.prefix ? value.prefix : `${question.ev.type} ${compact(value)}`;
    $("answer-types").replaceChildren(
      ...events.filter((s) => s.title && s.title !== "StartEvent" && s.title !== "StopEvent").map((s) => h("option", { value: s.title })),
    );
    const typeInput = $("answer-type");
    typeInput.value = guessAnswerType(events, question.ev);
    const carried = Object.fromEntries(Object.entries(value).filter(([k]) => k !== "prefix"));
    let builtFor; // the schema the fields were built from (undefined: none yet)
    const build = () => {
      const found = events.find((s) => s.title === typeInput.value.trim()) || null;
      if (found === builtFor) return; // the same fields: keep what was typed
      builtFor = found;
      const schema = found || { properties: { response: {} } };
      const values = {};
      for (const key of Object.keys(schema.properties || {})) if (Object.hasOwn(carried, key)) values[key] = carried[key];
      state.answerCollect = schemaForm($("answer-fields"), schema, { prefix: "answer", free: true, values });
    };
    typeInput.onchange = build;
    build();
    $("answer-error").textContent = "";
    show(form, true);
  }

  async function sendAnswer(event) {
    event.preventDefault();
    const id = state.selected;
    const seq = state.answerSeq;
    const error = $("answer-error");
    error.textContent = "";
    const type = $("answer-type").value.trim();
    if (!type) {
      error.textContent = "Name the event type to send.";
      $("answer-type").focus();
      return;
    }
    let value;
    try {
      value = state.answerCollect ? state.answerCollect() : {};
    } catch (failure) {
      error.textContent = failure.message;
      return;
    }
    const button = event.submitter || $("answer-form").querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const response = await api(`/events/${encodeURIComponent(id)}`, { method: "POST", json: { event: { type, value } } });
      if (!response.ok) {
        error.textContent = await problem(response);
        return;
      }
      if (state.selected === id) {
        state.answeredSeq = seq;
        $("events-state").textContent = `${type} sent; waiting for the run…`;
        updateAnswer();
      }
    } catch (failure) {
      error.textContent = `The server could not be reached: ${failure.message}`;
    } finally {
      button.disabled = false;
    }
  }

  // The graph: a layered drawing, top to bottom.

  function layout(graph) {
    const nodes = (graph.nodes || []).filter((n) => n && typeof n.id === "string");
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const edges = (graph.edges || []).filter((e) => byId.has(e.source) && byId.has(e.target));
    const out = new Map(nodes.map((n) => [n.id, []]));
    const into = new Map(nodes.map((n) => [n.id, []]));
    for (const e of edges) {
      out.get(e.source).push(e);
      into.get(e.target).push(e);
    }
    const isStart = (n) => Array.isArray(n.event_types) && n.event_types.includes("StartEvent");
    const roots = [
      ...nodes.filter(isStart),
      ...nodes.filter((n) => !isStart(n) && into.get(n.id).length === 0),
      ...nodes,
    ];
    // Back edges (those closing a cycle) are left out of the layering.
    const mark = new Map();
    const back = new Set();
    const visit = (id) => {
      mark.set(id, 1);
      for (const e of out.get(id)) {
        if (e.source === e.target || mark.get(e.target) === 1) back.add(e);
        else if (!mark.has(e.target)) visit(e.target);
      }
      mark.set(id, 2);
    };
    for (const n of roots) if (!mark.has(n.id)) visit(n.id);
    // Longest path from the roots gives each node its layer.
    const layer = new Map(nodes.map((n) => [n.id, 0]));
    const pending = new Map(nodes.map((n) => [n.id, into.get(n.id).filter((e) => !back.has(e)).length]));
    const queue = nodes.filter((n) => pending.get(n.id) === 0).map((n) => n.id);
    while (queue.length) {
      const id = queue.shift();
      for (const e of out.get(id)) {
        if (back.has(e)) continue;
        layer.set(e.target, Math.max(layer.get(e.target), layer.get(id) + 1));
        pending.set(e.target, pending.get(e.target) - 1);
        if (pending.get(e.target) === 0) queue.push(e.target);
      }
    }
    const rows = [];
    for (const n of nodes) {
      const at = layer.get(n.id);
      (rows[at] ||= []).push(n.id);
    }
    // A few barycenter sweeps to untangle each row against its neighbours.
    const position = new Map();
    const index = () => rows.forEach((row) => row.forEach((id, i) => position.set(id, i)));
    index();
    const sweep = (row, neighbours) => {
      const weight = new Map(
        row.map((id) => {
          const near = neighbours(id).filter((other) => position.has(other));
          const mean = near.length ? near.reduce((s, o) => s + position.get(o), 0) / near.length : position.get(id);
          return [id, mean];
        }),
      );
      row.sort((a, b) => weight.get(a) - weight.get(b));
    };
    for (let round = 0; round < 4; round += 1) {
      for (let r = 1; r < rows.length; r += 1) {
        if (rows[r]) sweep(rows[r], (id) => into.get(id).filter((e) => !back.has(e) && layer.get(e.source) === r - 1).map((e) => e.source));
        index();
      }
      for (let r = rows.length - 2; r >= 0; r -= 1) {
        if (rows[r]) sweep(rows[r], (id) => out.get(id).filter((e) => !back.has(e) && layer.get(e.target) === r + 1).map((e) => e.target));
        index();
      }
    }
    // Coordinates: rows centred on the widest one.
    const CHAR = 7.3;
    const HEIGHT = 30;
    const GAP_X = 28;
    const GAP_Y = 46;
    const PAD = 16;
    const box = new Map();
    const widthOf = (n) => Math.max(64, String(n.label ?? n.id).length * CHAR + 28);
    const rowWidths = rows.map((row = []) => row.reduce((s, id) => s + widthOf(byId.get(id)), 0) + GAP_X * Math.max(0, row.length - 1));
    const widest = Math.max(0, ...rowWidths);
    const hasBack = back.size > 0;
    const width = widest + 2 * PAD + (hasBack ? 80 : 0);
    rows.forEach((row = [], r) => {
      let x = PAD + (widest - rowWidths[r]) / 2;
      for (const id of row) {
        const w = widthOf(byId.get(id));
        box.set(id, { x, y: PAD + r * (HEIGHT + GAP_Y), w, h: HEIGHT });
        x += w + GAP_X;
      }
    });
    const height = PAD * 2 + Math.max(1, rows.length) * HEIGHT + Math.max(0, rows.length - 1) * GAP_Y;
    return { nodes, edges, back, box, width, height, widest, PAD };
  }

  function drawGraph(graph) {
    const holder = $("graph");
    if (!graph) {
      holder.replaceChildren();
      show($("graph-none"), true);
      return;
    }
    const { nodes, edges, back, box, width, height, widest, PAD } = layout(graph);
    const steps = nodes.filter((n) => n.node_type === "step").length;
    const events = nodes.filter((n) => n.node_type === "event").length;
    const name = graph.name || state.current || "";
    const summary = `Graph of ${name}: ${steps} step${steps === 1 ? "" : "s"}, ${events} event${events === 1 ? "" : "s"}`;
    const drawing = svg("svg", {
      role: "img",
      "aria-label": summary,
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      class: "graph-svg",
      "data-workflow": name,
    });
    drawing.append(svg("title", { text: summary }));
    const markerId = `arrow-${Math.random().toString(36).slice(2)}`;
    drawing.append(
      svg(
        "defs",
        {},
        svg(
          "marker",
          { id: markerId, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
          svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }),
        ),
      ),
    );
    const lines = svg("g", { class: "edges" });
    for (const e of edges) {
      const a = box.get(e.source);
      const b = box.get(e.target);
      let d;
      if (e.source === e.target) {
        const x = a.x + a.w;
        const y = a.y + a.h / 2;
        d = `M${x},${y - 8} C${x + 36},${y - 28} ${x + 36},${y + 28} ${x},${y + 8}`;
      } else if (back.has(e) || b.y <= a.y) {
        // Around the right of the drawing, back up to the target.
        const x1 = a.x + a.w;
        const y1 = a.y + a.h / 2;
        const x2 = b.x + b.w;
        const y2 = b.y + b.h / 2;
        const side = PAD + widest + 40;
        d = `M${x1},${y1} C${side},${y1} ${side},${y2} ${x2},${y2}`;
      } else {
        const x1 = a.x + a.w / 2;
        const y1 = a.y + a.h;
        const x2 = b.x + b.w / 2;
        const y2 = b.y;
        const bend = (y2 - y1) / 2;
        d = `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}`;
      }
      const path = svg("path", { d, class: back.has(e) ? "edge back" : "edge", "marker-end": `url(#${markerId})` });
      path.append(svg("title", { text: `${e.source} → ${e.target}${e.label ? ` (${e.label})` : ""}` }));
      lines.append(path);
      if (e.label) {
        lines.append(svg("text", { x: (a.x + a.w / 2 + b.x + b.w / 2) / 2 + 4, y: (a.y + a.h + b.y) / 2, class: "edge-label", text: e.label }));
      }
    }
    drawing.append(lines);
    const group = svg("g", { class: "nodes" });
    for (const n of nodes) {
      const { x, y, w, h: ht } = box.get(n.id);
      const kind = ["step", "event", "external", "resource"].includes(n.node_type) ? n.node_type : "other";
      const types = Array.isArray(n.event_types) ? n.event_types : [];
      const classes = ["node", kind];
      if (types.includes("StartEvent")) classes.push("start");
      if (types.includes("StopEvent")) classes.push("stop");
      if (types.includes("InputRequiredEvent")) classes.push("input");
      const label = String(n.label ?? n.id);
      const fields = n.event_schema && n.event_schema.properties ? Object.keys(n.event_schema.properties) : [];
      const tip = [`${kind} ${label}`, types.length > 1 ? `is a ${types.slice(1).join(", ")}` : "", fields.length ? `fields: ${fields.join(", ")}` : "", firstParagraph(n.description)];
      const node = svg(
        "g",
        { class: classes.join(" "), "data-node-id": n.id, "data-event-type": kind === "event" ? n.event_type || label : null },
        svg("title", { text: tip.filter(Boolean).join("\n") }),
        svg("rect", { x, y, width: w, height: ht, rx: kind === "event" ? ht / 2 : kind === "step" ? 4 : 10 }),
        svg("text", { x: x + w / 2, y: y + ht / 2, "text-anchor": "middle", "dominant-baseline": "central", text: label }),
      );
      group.append(node);
    }
    drawing.append(group);
    holder.replaceChildren(drawing);
    show($("graph-none"), false);
    $("graph-title").textContent = `Graph of ${name}`;
    highlightSeen();
  }

  function highlightSeen() {
    const drawing = $("graph").querySelector("svg");
    if (!drawing) return;
    const ofRun = state.view && drawing.dataset.workflow === state.view.workflow_name;
    for (const node of drawing.querySelectorAll("g.node[data-event-type]")) {
      // A run's start event is not streamed, but every run had one.
      const seen = state.seen.has(node.dataset.eventType) || node.classList.contains("start");
      node.classList.toggle("seen", Boolean(ofRun) && seen);
    }
  }

  // Polling and start-up.

  let reachable = null;

  function connection(ok, detail) {
    const el = $("connection");
    el.title = ok ? `refreshed ${new Date().toLocaleTimeString()}` : detail;
    if (ok === reachable) return;
    reachable = ok;
    el.textContent = ok ? `connected to ${location.host}` : `server unreachable: ${detail}`;
    el.classList.toggle("error", !ok);
  }

  async function poll() {
    try {
      await refreshRuns();
      if (state.selected && (!state.view || state.view.status === "running")) await refreshRun();
      connection(true);
    } catch (error) {
      connection(false, error.message);
    } finally {
      setTimeout(poll, document.hidden ? POLL_MS * 3 : POLL_MS);
    }
  }

  async function boot() {
    $("start-form").addEventListener("submit", startRun);
    $("answer-form").addEventListener("submit", sendAnswer);
    $("cancel-run").addEventListener("click", cancelRun);
    $("runs-refresh").addEventListener("click", () => refreshRuns().catch((e) => connection(false, e.message)));
    $("runs-status").addEventListener("change", () => refreshRuns().catch((e) => connection(false, e.message)));
    $("token-dialog").addEventListener("cancel", (event) => event.preventDefault()); // nothing works without it
    $("forget-token").addEventListener("click", () => {
      setToken(null);
      location.reload();
    });
    show($("forget-token"), Boolean(getToken()));
    try {
      await loadWorkflows();
      connection(true);
    } catch (error) {
      connection(false, error.message);
    }
    const wanted = new URLSearchParams(location.hash.slice(1));
    if (wanted.get("workflow")) selectWorkflow(wanted.get("workflow"));
    else if (state.workflows.length && !wanted.get("run")) selectWorkflow(state.workflows[0]);
    if (wanted.get("run")) selectRun(wanted.get("run"));
    poll();
  }

  boot();
})();
