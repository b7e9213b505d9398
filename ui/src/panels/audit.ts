// Audit log panel: the state of the tamper-evident log (events, signing key, newest signed
// checkpoint), "Verify now", and a filterable, paged table of events, newest first; a row
// opens the event's detail. Reads are themselves recorded by the core (auditors ask who
// looked), so the panel loads on demand and never polls the table.

import { h, replace } from "../dom";
import { errorBox } from "../errors";
import type { AuditEvent } from "../generated/AuditEvent";
import type { AuditKeyInfo } from "../generated/AuditKeyInfo";
import type { AuditLogsRequest } from "../generated/AuditLogsRequest";
import type { AuditPage } from "../generated/AuditPage";
import type { AuditStatus } from "../generated/AuditStatus";
import { CoreError, call } from "../ipc";
import { eventCount, localTime, openEventDetail, outcomeBadge, shortHash } from "./audit-detail";
import { verifier } from "./audit-verify";

const PAGE_SIZE = 50;

type FilterKey = "actor" | "action" | "event_type" | "resource_type" | "since" | "until";

const FILTERS: { key: FilterKey; label: string; placeholder: string }[] = [
  { key: "actor", label: "Actor", placeholder: "name or id" },
  { key: "action", label: "Action", placeholder: "e.g. create" },
  { key: "event_type", label: "Event type", placeholder: "server.added" },
  { key: "resource_type", label: "Resource type", placeholder: "server" },
  { key: "since", label: "Since", placeholder: "24h or 2026-11-29" },
  { key: "until", label: "Until", placeholder: "1h or 2026-11-30 08:00" },
];

/** Datalist suggestions: values seen in the pages loaded so far. */
const SUGGEST: FilterKey[] = ["action", "event_type", "resource_type"];

// Kept across visits of the panel (not across restarts of the app).
const inputs: Record<FilterKey, string> = { actor: "", action: "", event_type: "", resource_type: "", since: "", until: "" };
let applied: AuditLogsRequest = {};
let offset = 0;
const seen: Record<string, Set<string>> = Object.fromEntries(SUGGEST.map((k) => [k, new Set<string>()]));

const UNITS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `24h`, `30m`, `7d` (that long ago), `2026-11-29`, `2026-11-29 08:00` (local) or RFC 3339. */
export function parseTime(text: string, label: string): string | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  const rel = /^(\d+)\s*([mhdw])$/i.exec(t);
  if (rel) return new Date(Date.now() - Number(rel[1]) * UNITS[rel[2].toLowerCase()]).toISOString();
  const local = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(t);
  const date = local
    ? new Date(+local[1], +local[2] - 1, +local[3], +(local[4] ?? 0), +(local[5] ?? 0), +(local[6] ?? 0))
    : new Date(t);
  if (Number.isNaN(date.getTime()) || (local && date.getDate() !== +local[3])) {
    throw new CoreError({
      code: "invalid_input",
      message: `${label}: \`${t}\` is not a time`,
      hint: "write a local date and time such as 2026-11-29 08:00, a date such as 2026-11-29, or how long ago: 30m, 24h, 7d",
    });
  }
  return date.toISOString();
}

function count(n: number): string {
  return n.toLocaleString();
}

export function renderAudit(container: HTMLElement): void {
  // ---- Status strip and verification ----
  const statusBody = h("div", { "data-testid": "audit-status-body" });
  const keygenFeedback = h("div", { class: "keygen-feedback", "data-testid": "audit-keygen-feedback" });
  const { button: verifyButton, area: verifyArea } = verifier({
    openEvent: (id, flag) => openEventDetail(section, id, detailActions, flag),
    finished: () => void reloadAll(),
  });

  // ---- Filters ----
  const fields = Object.fromEntries(
    FILTERS.map((f) => [
      f.key,
      h("input", {
        id: `audit-filter-${f.key}`,
        "data-testid": `audit-filter-${f.key}`,
        type: "text",
        placeholder: f.placeholder,
        autocomplete: "off",
        spellcheck: "false",
        list: SUGGEST.includes(f.key) ? `audit-suggest-${f.key}` : undefined,
        value: inputs[f.key],
      }),
    ]),
  ) as Record<FilterKey, HTMLInputElement>;
  const datalists = Object.fromEntries(SUGGEST.map((k) => [k, h("datalist", { id: `audit-suggest-${k}` })]));
  const filterFeedback = h("div", { class: "filter-feedback", "data-testid": "audit-filter-feedback" });
  const form = h(
    "form",
    { class: "card audit-filters", "data-testid": "audit-filters", novalidate: true },
    h(
      "div",
      { class: "filter-grid" },
      ...FILTERS.map((f) => h("div", { class: "filter" }, h("label", { for: `audit-filter-${f.key}` }, f.label), fields[f.key])),
    ),
    h(
      "div",
      { class: "filter-actions" },
      h("button", { type: "submit", class: "btn btn-primary", "data-testid": "audit-filter-apply" }, "Apply filters"),
      h("button", { type: "button", class: "btn", "data-testid": "audit-filter-clear", onclick: () => clearFilters() }, "Clear"),
      h("button", { type: "button", class: "btn", "data-testid": "audit-refresh", onclick: () => void reloadAll() }, "Refresh"),
    ),
    ...Object.values(datalists),
    filterFeedback,
  );

  // ---- Table ----
  const tableCard = h("div", { class: "card list-card", "data-testid": "audit-events" });

  const section = h(
    "section",
    { class: "panel", "data-testid": "panel-audit" },
    h(
      "header",
      { class: "panel-header" },
      h("h1", {}, "Audit log"),
      h("span", { class: "muted" }, "Tamper-evident record of every change made through pgAnalytics"),
    ),
    h("div", { class: "card audit-status", "data-testid": "audit-status" }, statusBody, keygenFeedback),
    verifyArea,
    form,
    tableCard,
  );
  container.append(section);

  const detailActions = {
    filterActor(actorId: string): void {
      for (const f of FILTERS) fields[f.key].value = "";
      fields.actor.value = actorId;
      applyFilters();
    },
  };

  function stat(label: string, value: HTMLElement | string, sub: HTMLElement | string | null, testid: string, title?: string): HTMLElement {
    return h(
      "div",
      { class: "stat", title },
      h("div", { class: "stat-label" }, label),
      h("div", { class: "stat-value", "data-testid": testid }, value),
      sub ? h("div", { class: "stat-sub" }, sub) : null,
    );
  }

  function keyStat(s: AuditStatus): HTMLElement {
    if (s.signing_key === null) {
      return stat("Signing key", h("span", { class: "bad-text", "data-state": "none" }, "None"), "checkpoints are not signed", "audit-status-key");
    }
    const [algorithm, fingerprint] = s.signing_key.split(" ");
    if (!fingerprint?.startsWith("sha256:")) {
      // "configured but unreadable: …": the key is set up but cannot be used.
      return stat("Signing key", h("span", { class: "bad-text", "data-state": "unreadable" }, "Unreadable"), s.signing_key, "audit-status-key");
    }
    return stat(
      "Signing key",
      h("span", { class: "mono", "data-state": "ok", "data-fingerprint": fingerprint }, shortHash(fingerprint)),
      algorithm,
      "audit-status-key",
      fingerprint,
    );
  }

  function renderStatus(s: AuditStatus): void {
    const c = s.newest_checkpoint;
    replace(
      statusBody,
      h(
        "div",
        { class: "status-line" },
        h(
          "div",
          { class: "stat-row" },
          stat("Events", count(s.events), s.last_id !== null ? `newest #${s.last_id}` : "empty", "audit-status-events"),
          keyStat(s),
          stat(
            "Newest checkpoint",
            c ? eventCount(c.tree_size) : h("span", { class: "muted" }, "None yet"),
            c ? h("span", { title: c.signed_at }, `${c.kind === "seal" ? "seal, " : ""}signed ${localTime(c.signed_at)}`) : null,
            "audit-status-checkpoint",
            `Checkpoints folder: ${s.checkpoints}`,
          ),
          stat("Unsealed events", count(s.unsealed_events), "not yet signed", "audit-status-unsealed"),
          stat(
            "Retention",
            s.retention ? `${count(s.retention.retention_days)} days` : h("span", { class: "muted" }, "Not set"),
            s.retention?.compliance_framework ?? null,
            "audit-status-retention",
          ),
        ),
        h("div", { class: "stat-actions" }, verifyButton),
      ),
      s.signing_key === null ? keyCallToAction(s) : null,
    );
  }

  function keyCallToAction(s: AuditStatus): HTMLElement {
    const button = h("button", { class: "btn btn-primary", "data-testid": "audit-keygen" }, "Create signing key");
    button.addEventListener("click", () => void createKey(button));
    return h(
      "div",
      { class: "key-cta", "data-testid": "audit-key-cta" },
      h(
        "div",
        {},
        h("strong", {}, "No signing key. "),
        "Without one, no checkpoint is signed, so verification can only check the hash chain: someone with database rights could rewrite or truncate the log unnoticed. ",
        "A new RSA-2048 key is kept in the OS keyring; the checkpoints it signs are written to ",
        h("span", { class: "mono wrap" }, s.checkpoints),
        ".",
      ),
      button,
    );
  }

  async function createKey(button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    button.textContent = "Creating key…";
    replace(keygenFeedback);
    let created: AuditKeyInfo | null = null;
    try {
      created = await call("audit_keygen", {});
    } catch (err) {
      replace(keygenFeedback, errorBox(err, "audit-keygen-error"));
    }
    // The status strip (key, first checkpoint) and the table (the key's creation) changed.
    await reloadAll();
    if (created) showKeyCreated(created);
  }

  function showKeyCreated(k: AuditKeyInfo): void {
    replace(
      keygenFeedback,
      h(
        "div",
        { class: "key-created", "data-testid": "audit-keygen-ok" },
        h("span", { class: "ok" }, "Signing key created."),
        " Fingerprint ",
        h("span", { class: "mono wrap", "data-testid": "audit-keygen-fingerprint" }, k.fingerprint),
        ` (${k.algorithm}) · private key: ${k.private_key} · public key: `,
        h("span", { class: "mono wrap" }, k.public_key_path),
        ". Keep a copy of the public key and the checkpoints elsewhere: they are what proves the log intact.",
      ),
    );
  }

  async function loadStatus(): Promise<void> {
    try {
      const s = await call("audit_status");
      if (section.isConnected) renderStatus(s);
    } catch (err) {
      if (section.isConnected) replace(statusBody, errorBox(err, "audit-status-error"), h("div", { class: "stat-actions" }, verifyButton));
    }
  }

  // ---- Events ----
  function applyFilters(): void {
    const request: AuditLogsRequest = {};
    try {
      for (const f of FILTERS) {
        inputs[f.key] = fields[f.key].value;
        const v = fields[f.key].value.trim();
        if (v === "") continue;
        if (f.key === "since" || f.key === "until") request[f.key] = parseTime(v, f.label);
        else request[f.key] = v;
      }
    } catch (err) {
      replace(filterFeedback, errorBox(err, "audit-filter-error"));
      return;
    }
    replace(filterFeedback);
    applied = request;
    offset = 0;
    void loadEvents();
  }

  function clearFilters(): void {
    for (const f of FILTERS) fields[f.key].value = "";
    applyFilters();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    applyFilters();
  });

  let loadGeneration = 0;

  async function loadEvents(): Promise<void> {
    const gen = ++loadGeneration;
    tableCard.dataset.loading = "true";
    let page: AuditPage;
    try {
      page = await call("audit_logs", { ...applied, limit: PAGE_SIZE, offset });
    } catch (err) {
      if (gen === loadGeneration) {
        replace(tableCard, h("h2", {}, "Events"), errorBox(err, "audit-events-error"));
        delete tableCard.dataset.loading;
      }
      return;
    }
    if (gen !== loadGeneration || !section.isConnected) return;
    // Past the end (events left the filter's window): show the last page instead.
    if (page.events.length === 0 && page.total > 0 && offset > 0) {
      offset = Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE;
      return loadEvents();
    }
    renderEvents(page);
    delete tableCard.dataset.loading;
  }

  function remember(events: AuditEvent[]): void {
    for (const e of events) {
      seen.action.add(e.action);
      seen.event_type.add(e.event_type);
      seen.resource_type.add(e.resource_type);
    }
    for (const k of SUGGEST) replace(datalists[k], ...[...seen[k]].sort().map((v) => h("option", { value: v })));
  }

  function pager(page: AuditPage): HTMLElement {
    const first = page.total === 0 ? 0 : page.offset + 1;
    const last = page.offset + page.events.length;
    const go = (to: number): void => {
      offset = Math.max(0, to);
      void loadEvents();
    };
    return h(
      "div",
      { class: "pager" },
      h("span", { class: "muted", "data-testid": "audit-range" }, `${count(first)}–${count(last)} of ${count(page.total)}`),
      h("button", { class: "btn", "data-testid": "audit-prev", disabled: page.offset === 0, onclick: () => go(page.offset - PAGE_SIZE) }, "‹ Newer"),
      h("button", { class: "btn", "data-testid": "audit-next", disabled: last >= page.total, onclick: () => go(page.offset + PAGE_SIZE) }, "Older ›"),
    );
  }

  function row(e: AuditEvent): HTMLElement {
    const open = (): void => openEventDetail(section, e.id, detailActions);
    return h(
      "tr",
      {
        class: e.outcome === "success" ? "event-row" : `event-row event-${e.outcome}`,
        tabindex: 0,
        "data-testid": "audit-row",
        "data-id": e.id,
        "data-event-type": e.event_type,
        "data-resource": e.resource_id,
        "data-outcome": e.outcome,
        onclick: open,
        onkeydown: (event: Event) => {
          if ((event as KeyboardEvent).key === "Enter") open();
        },
      },
      h("td", { class: "muted nowrap" }, `#${e.id}`),
      h("td", { class: "nowrap", title: e.created_at }, localTime(e.created_at)),
      h("td", { "data-testid": "audit-row-actor" }, e.actor_name || h("span", { class: "muted" }, "unnamed"), h("div", { class: "actor-kind" }, e.actor_kind)),
      h("td", { "data-testid": "audit-row-action" }, e.action),
      h("td", { class: "mono", "data-testid": "audit-row-event-type" }, e.event_type),
      h(
        "td",
        { "data-testid": "audit-row-resource" },
        e.resource_type,
        e.resource_id ? h("div", { class: "mono resource-id" }, e.resource_id) : null,
      ),
      h("td", { "data-testid": "audit-row-outcome" }, outcomeBadge(e.outcome)),
      h("td", { "data-testid": "audit-row-source" }, e.source),
    );
  }

  function renderEvents(page: AuditPage): void {
    remember(page.events);
    const filtered = Object.keys(applied).length > 0;
    const head = h("div", { class: "card-head" }, h("h2", { "data-testid": "audit-total" }, `Events (${count(page.total)}${filtered ? " matching" : ""})`), pager(page));
    if (page.events.length === 0) {
      replace(
        tableCard,
        head,
        h("p", { class: "empty", "data-testid": "audit-empty" }, filtered ? "No event matches these filters." : "The audit log holds no events."),
      );
      return;
    }
    replace(
      tableCard,
      head,
      h(
        "table",
        { class: "table audit-table", "data-testid": "audit-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...["#", "Time", "Actor", "Action", "Event type", "Resource", "Outcome", "Source"].map((t) => h("th", {}, t)),
          ),
        ),
        h("tbody", {}, ...page.events.map(row)),
      ),
      page.total > PAGE_SIZE ? h("div", { class: "card-foot" }, pager(page)) : null,
    );
  }

  async function reloadAll(): Promise<void> {
    if (!section.isConnected) return;
    await Promise.all([loadStatus(), loadEvents()]);
  }

  replace(statusBody, h("p", { class: "muted", "data-testid": "audit-loading" }, h("span", { class: "spinner" }), " Waiting for the repository…"));
  replace(tableCard, h("h2", {}, "Events"), h("p", { class: "muted" }, h("span", { class: "spinner" }), " Loading…"));
  void reloadAll();
}
