// Audit event detail: every field of one event, its before/after values side by side (changed
// keys highlighted), its personal fields (or that they were erased) and its hashes. Shown in a
// drawer over the Audit log panel; the event is read again with `audit_show`, which the core
// records as a read of the log.

import { h, replace } from "../dom";
import { errorBox } from "../errors";
import type { AuditEvent } from "../generated/AuditEvent";
import { call } from "../ipc";

export interface DetailActions {
  /** Show only this actor's events in the table. */
  filterActor(actorId: string): void;
}

/** Local date and time of an RFC 3339 timestamp. */
export function localTime(iso: string): string {
  return new Date(iso).toLocaleString();
}

/** `1 event`, `1,234 events`. */
export function eventCount(n: number): string {
  return `${n.toLocaleString()} ${n === 1 ? "event" : "events"}`;
}

/** `sha256:0123456789abcdef…` → `sha256:01234567…89abcdef` (the full value goes in a title). */
export function shortHash(hash: string, keep = 8): string {
  const colon = hash.indexOf(":") + 1;
  const body = hash.slice(colon);
  if (body.length <= keep * 2 + 1) return hash;
  return `${hash.slice(0, colon)}${body.slice(0, keep)}…${body.slice(-keep)}`;
}

export function outcomeBadge(outcome: AuditEvent["outcome"], testid?: string): HTMLElement {
  return h(
    "span",
    { class: `outcome outcome-${outcome}`, "data-testid": testid, "data-outcome": outcome },
    outcome === "success" ? "success" : outcome === "failure" ? "✕ failure" : "⊘ denied",
  );
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** JSON with sorted keys: equal values give equal text whatever the key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (isObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function pretty(value: unknown): string {
  return JSON.stringify(value, null, 2) ?? String(value);
}

/**
 * One side of the before/after comparison. Objects are shown key by key so that a key whose
 * value differs from the other side (or that the other side lacks) can be marked.
 */
function valuesBlock(value: unknown, other: unknown, side: "old" | "new"): HTMLElement {
  const testid = `audit-detail-${side}`;
  if (value === null || value === undefined) {
    return h(
      "div",
      { class: "json-none muted", "data-testid": testid, "data-empty": "true" },
      side === "old" ? "No previous values (nothing existed before, or nothing was recorded)." : "No new values (removed, or nothing was recorded).",
    );
  }
  if (!isObject(value)) return h("pre", { class: "json", "data-testid": testid }, pretty(value));
  const keys = Object.keys(value);
  const lines = keys.map((key, i) => {
    const absent = !isObject(other) || !(key in other);
    const differs = !absent && canonical((other as Record<string, unknown>)[key]) !== canonical(value[key]);
    const mark = absent ? (side === "new" ? "added" : "removed") : differs ? "changed" : null;
    const text = `  ${JSON.stringify(key)}: ${pretty(value[key]).replace(/\n/g, "\n  ")}${i < keys.length - 1 ? "," : ""}`;
    return h(
      "span",
      {
        class: mark ? `json-line diff-${mark}` : "json-line",
        "data-key": key,
        "data-diff": mark,
        title: mark ? `${key}: ${mark}` : undefined,
      },
      text,
    );
  });
  return h(
    "pre",
    { class: "json", "data-testid": testid },
    h("span", { class: "json-line" }, keys.length ? "{" : "{}"),
    ...lines,
    keys.length ? h("span", { class: "json-line" }, "}") : null,
  );
}

function facts(rows: [string, HTMLElement | string, string][], wide = false): HTMLElement {
  return h(
    "dl",
    { class: wide ? "facts audit-facts facts-wide" : "facts audit-facts" },
    ...rows.flatMap(([label, value, testid]) => [h("dt", {}, label), h("dd", { "data-testid": testid }, value)]),
  );
}

function mono(text: string | null, empty = "—"): HTMLElement {
  return text === null || text === "" ? h("span", { class: "muted" }, empty) : h("span", { class: "mono wrap" }, text);
}

function personalFields(e: AuditEvent): HTMLElement {
  if (e.personal_erased) {
    return h(
      "div",
      { class: "erased", "data-testid": "audit-detail-erased" },
      h("strong", {}, "Erased. "),
      "This actor's personal fields (address, user agent, personal details) were erased on request (GDPR). The event itself still verifies: its hash commits to a digest of them, not to the data.",
    );
  }
  return h(
    "div",
    { "data-testid": "audit-detail-personal" },
    facts([
      ["IP address", mono(e.ip_address, "none recorded"), "audit-detail-ip"],
      ["User agent", mono(e.user_agent, "none recorded"), "audit-detail-user-agent"],
    ]),
    e.personal_details === null || e.personal_details === undefined
      ? null
      : h("pre", { class: "json", "data-testid": "audit-detail-personal-details" }, pretty(e.personal_details)),
  );
}

function eventBody(e: AuditEvent, actions: DetailActions, close: () => void): HTMLElement[] {
  const changes = Object.keys(e.changes ?? {}).length ? e.changes : null;
  return [
    facts([
      ["Event", h("span", {}, `#${e.id}`), "audit-detail-id"],
      ["Event id", mono(e.event_id), "audit-detail-uuid"],
      ["Time", h("span", { title: e.created_at }, localTime(e.created_at)), "audit-detail-time"],
      ["Outcome", outcomeBadge(e.outcome), "audit-detail-outcome"],
      ["Event type", mono(e.event_type), "audit-detail-event-type"],
      ["Action", e.action, "audit-detail-action"],
      ["Resource type", e.resource_type, "audit-detail-resource-type"],
      ["Resource", mono(e.resource_id, "none"), "audit-detail-resource-id"],
      ["Actor", h("span", {}, e.actor_name || h("span", { class: "muted" }, "unnamed"), " ", h("span", { class: "actor-kind" }, e.actor_kind)), "audit-detail-actor"],
      ["Actor id", mono(e.actor_id), "audit-detail-actor-id"],
      ["Source", e.source, "audit-detail-source"],
      ["Subject id", mono(e.subject_id, "none"), "audit-detail-subject"],
    ]),
    h(
      "div",
      { class: "detail-actions" },
      h(
        "button",
        {
          class: "btn",
          "data-testid": "audit-detail-filter-actor",
          onclick: () => {
            close();
            actions.filterActor(e.actor_id);
          },
        },
        "Show this actor's events",
      ),
    ),
    h("h3", {}, "Before and after"),
    h(
      "div",
      { class: "diff-grid", "data-testid": "audit-detail-values" },
      h("div", {}, h("div", { class: "diff-label" }, "Before (old values)"), valuesBlock(e.old_values, e.new_values, "old")),
      h("div", {}, h("div", { class: "diff-label" }, "After (new values)"), valuesBlock(e.new_values, e.old_values, "new")),
    ),
    h("h3", {}, "Details"),
    changes
      ? h("pre", { class: "json", "data-testid": "audit-detail-changes" }, pretty(changes))
      : h("p", { class: "muted", "data-testid": "audit-detail-changes" }, "None recorded."),
    h("h3", {}, "Personal fields"),
    personalFields(e),
    h("h3", {}, "Integrity"),
    facts([
      ["Content hash", mono(e.content_hash), "audit-detail-content-hash"],
      ["Previous hash", mono(e.previous_hash, "none (first event of the chain)"), "audit-detail-previous-hash"],
    ], true),
  ];
}

/**
 * Open the detail drawer of event `id` inside `host` (replacing any open one); `flag` is a
 * warning shown above it (what verification found wrong with the event).
 */
export function openEventDetail(host: HTMLElement, id: number, actions: DetailActions, flag?: string): void {
  host.querySelector("[data-testid=audit-detail]")?.remove();
  const body = h("div", { class: "drawer-body", "data-testid": "audit-detail-body" });
  const title = h("h2", { id: "audit-detail-title" }, `Event #${id}`);
  const closeButton = h("button", { class: "btn", "data-testid": "audit-detail-close", "aria-label": "Close" }, "Close");
  const drawer = h(
    "div",
    { class: "drawer", role: "dialog", "aria-modal": "true", "aria-labelledby": "audit-detail-title" },
    h("header", { class: "drawer-header" }, title, closeButton),
    body,
  );
  const overlay = h("div", { class: "overlay", "data-testid": "audit-detail", "data-id": id }, drawer);

  const close = (): void => overlay.remove();
  closeButton.addEventListener("click", close);
  overlay.addEventListener("click", (event) => {
    if (event.target === overlay) close();
  });
  overlay.addEventListener("keydown", (event) => {
    if (event.key === "Escape") close();
  });

  replace(body, h("p", { class: "muted" }, h("span", { class: "spinner" }), " Loading the event…"));
  host.append(overlay);
  closeButton.focus();

  void (async () => {
    try {
      const e = await call("audit_show", { id });
      if (!overlay.isConnected) return;
      overlay.dataset.loaded = "true";
      replace(title, `Event #${e.id} · `, h("span", { class: "mono" }, e.event_type));
      replace(
        body,
        flag ? h("div", { class: "detail-flag", role: "alert", "data-testid": "audit-detail-flag" }, flag) : null,
        ...eventBody(e, actions, close),
      );
    } catch (err) {
      if (overlay.isConnected) replace(body, errorBox(err, "audit-detail-error"));
    }
  })();
}
