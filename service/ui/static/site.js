// hiring-news pages: optional liveliness. Every page works without this file.
//  - Replay forms redraw the view in place as the date or the "as known at" slider moves.
//  - The feed page follows the live stream (GET /events/stream).
//  - The search box filters the lists as you type.
"use strict";

document.documentElement.classList.add("js");

function markLabel(form, position) {
  const when = form.querySelector(".when");
  const out = form.querySelector("output");
  if (out) out.textContent = String(position);
  if (!when) return;
  const marks = (when.dataset.marks || "").split(";").filter(Boolean).map((m) => {
    const i = m.indexOf("=");
    return [Number(m.slice(0, i)), m.slice(i + 1)];
  });
  // The label of the nearest labelled position at or before this one.
  let label = "";
  for (const [p, text] of marks) {
    if (p <= position) label = (p === position ? "recorded " : "after position " + p + ", recorded ") + text;
  }
  when.textContent = label;
}

function replay(form) {
  const view = document.querySelector("[data-view]");
  let pending = null;
  async function redraw() {
    const url = form.action + "?" + new URLSearchParams(new FormData(form)).toString();
    if (pending) pending.abort();
    pending = new AbortController();
    form.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(url, { signal: pending.signal, headers: { Accept: "text/html" } });
      const html = await response.text();
      const page = new DOMParser().parseFromString(html, "text/html");
      const fresh = page.querySelector("[data-view]");
      if (fresh && view) {
        view.replaceWith(fresh);
        history.replaceState(null, "", url);
        document.title = page.title;
        bindView();
      } else {
        window.location.assign(url);
      }
    } catch (error) {
      if (error.name !== "AbortError") window.location.assign(url);
    } finally {
      form.removeAttribute("aria-busy");
    }
  }
  const slider = form.querySelector('input[type="range"]');
  if (slider) slider.addEventListener("input", () => markLabel(form, Number(slider.value)));
  form.addEventListener("change", () => {
    if (!view) {
      form.requestSubmit();
      return;
    }
    redraw();
  });
  form.addEventListener("submit", (event) => {
    if (!view) return;
    event.preventDefault();
    redraw();
  });
}

function bindView() {
  // Nothing in the view needs binding yet; kept for what may.
}

function follow(list, live) {
  if (!window.EventSource) return;
  const source = new EventSource(live.dataset.stream);
  const types = [
    "person.added", "person.alias_added", "org.added", "org.renamed", "org.moved", "org.merged",
    "org.dissolved", "member.joined", "member.left", "member.role_changed", "lead.appointed",
    "comp.reported", "claim.confirmed", "claim.denied", "claim.retracted",
  ];
  source.addEventListener("open", () => {
    live.textContent = "Live: new events appear as they are recorded.";
    live.classList.add("on");
  });
  source.addEventListener("error", () => {
    live.textContent = "Reconnecting…";
    live.classList.remove("on");
  });
  function add(message) {
    const event = JSON.parse(message.data);
    const data = typeof event.data === "object" && event.data ? event.data : {};
    const source = typeof event.source === "object" && event.source ? event.source : {};
    const item = document.createElement("li");
    item.className = "event fresh";
    const parts = [];
    const text = (tag, cls, value) => {
      const el = document.createElement(tag);
      if (cls) el.className = cls;
      el.textContent = value;
      parts.push(el);
      return el;
    };
    text("span", "pos", "#" + event.position);
    text("span", "badge type", event.type);
    if (data.person_id) text("a", "", data.person_id).href = "/ui/people/" + encodeURIComponent(data.person_id);
    if (data.org_id) {
      text("span", "muted", "in");
      text("a", "", data.org_id).href = "/ui/orgs/" + encodeURIComponent(data.org_id);
    }
    const recorded = String(event.recorded_at || "").replace("T", " ").slice(0, 19);
    text("span", "muted", (source.outlet ? source.outlet + ", " : "") + "recorded " + recorded);
    parts.forEach((p) => item.appendChild(p));
    const empty = list.querySelector(".empty");
    if (empty) empty.remove();
    list.insertBefore(item, list.firstChild);
    while (list.children.length > 200) list.removeChild(list.lastChild);
  }
  types.forEach((t) => source.addEventListener(t, add));
}

function filter(input) {
  const scope = document.querySelector(input.dataset.filter);
  if (!scope) return;
  input.addEventListener("input", () => {
    const needle = input.value.trim().toLowerCase();
    scope.querySelectorAll("li[data-text]").forEach((li) => {
      li.hidden = needle !== "" && !li.dataset.text.includes(needle);
    });
  });
}

document.querySelectorAll("form[data-replay]").forEach(replay);
document.querySelectorAll("[data-filter]").forEach(filter);
const feed = document.querySelector("[data-feed]");
const live = document.getElementById("live");
if (feed && live) follow(feed, live);
