// "Prune…" of the Backups panel: a retention policy for one server (keep the newest N full
// backups, keep backups younger than D days), first run as a dry run that lists what would go
// and why, then — only after the list is confirmed — for real. The core never removes the last
// good backup of a server.

import { h, replace } from "../dom";
import { errorBox } from "../errors";
import type { BackupPruneRequest } from "../generated/BackupPruneRequest";
import type { BackupPruneResult } from "../generated/BackupPruneResult";
import { CoreError, call } from "../ipc";
import { when } from "./backups-common";

export interface PruneHooks {
  /** Backups were removed: the table is stale. */
  pruned(): void;
  /** The form was closed. */
  close(): void;
}

/** A whole number ≥ `min` from a field, or undefined when it is empty. */
function wholeNumber(input: HTMLInputElement, label: string, min: number): number | undefined {
  const text = input.value.trim();
  if (text === "") return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    throw new CoreError({
      code: "invalid_input",
      message: `${label}: \`${text}\` is not a whole number of at least ${min}`,
      hint: `write a number such as ${min === 0 ? 7 : 3}, or leave the field empty`,
    });
  }
  return n;
}

function list(r: BackupPruneResult, testid: string): HTMLElement {
  return h(
    "table",
    { class: "table compact", "data-testid": testid },
    h("thead", {}, h("tr", {}, ...["Backup", "Completed", "Status", "Why it goes", r.dry_run ? "" : "Objects removed"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      ...r.removed.map((p) =>
        h(
          "tr",
          { "data-testid": "prune-item", "data-id": p.id },
          h("td", { class: "mono", title: p.id }, p.name),
          h("td", { class: "nowrap" }, when(p.completed_at)),
          h("td", {}, p.status),
          h("td", {}, p.reason),
          h("td", {}, r.dry_run ? "" : p.objects_removed.toLocaleString()),
        ),
      ),
    ),
  );
}

/** The prune card for the servers in `servers`, starting on `initial`. */
export function pruneCard(servers: string[], initial: string | null, hooks: PruneHooks): HTMLElement {
  const serverSelect = h(
    "select",
    { id: "prune-server", "data-testid": "prune-server" },
    ...servers.map((s) => h("option", { value: s, selected: s === initial }, s)),
  );
  const keepFull = h("input", { id: "prune-keep-full", "data-testid": "prune-keep-full", type: "number", min: 1, step: 1, placeholder: "e.g. 3" });
  const keepDays = h("input", { id: "prune-keep-days", "data-testid": "prune-keep-days", type: "number", min: 0, step: 1, placeholder: "each backup's own" });
  const preview = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "prune-preview" }, "Show what would go");
  const outcome = h("div", { class: "prune-outcome", "data-testid": "prune-outcome", "aria-live": "polite" });

  const form = h(
    "form",
    { class: "card prune-card", "data-testid": "prune-form", novalidate: true },
    h(
      "div",
      { class: "card-head" },
      h("h2", {}, "Prune old backups"),
      h("button", { type: "button", class: "btn btn-small", "data-testid": "prune-close", onclick: () => hooks.close() }, "Close"),
    ),
    h(
      "div",
      { class: "form-grid" },
      h("label", { for: "prune-server" }, "Server"),
      serverSelect,
      h("label", { for: "prune-keep-full" }, "Keep newest"),
      h("div", { class: "inline-field" }, keepFull, h("span", { class: "muted" }, "completed full backups (empty: no count limit)")),
      h("label", { for: "prune-keep-days" }, "Keep younger than"),
      h("div", { class: "inline-field" }, keepDays, h("span", { class: "muted" }, "days (empty: each backup's own retention)")),
      h("span", {}),
      h("div", { class: "form-help" }, "Nothing is removed until you have seen the list and confirmed it. The newest completed backup of a server always stays."),
    ),
    h("div", { class: "form-actions" }, preview),
    outcome,
  );

  let request: BackupPruneRequest | null = null;

  function readRequest(): BackupPruneRequest {
    const server = serverSelect.value;
    if (!server) {
      throw new CoreError({ code: "invalid_input", message: "no server chosen", hint: "register a server in the Servers panel first" });
    }
    return {
      server,
      keep_full: wholeNumber(keepFull, "Keep newest", 1),
      keep_days: wholeNumber(keepDays, "Keep younger than", 0),
    };
  }

  // Changing the policy invalidates a dry run already shown.
  for (const field of [serverSelect, keepFull, keepDays]) {
    field.addEventListener("input", () => {
      if (request) {
        request = null;
        replace(outcome);
      }
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    preview.disabled = true;
    replace(outcome, h("p", { class: "muted" }, h("span", { class: "spinner" }), " Working out what the policy removes…"));
    try {
      const req = readRequest();
      const dry = await call("backup_prune", { ...req, dry_run: true });
      request = req;
      showDryRun(req, dry);
    } catch (err) {
      request = null;
      replace(outcome, errorBox(err, "prune-error"));
    } finally {
      preview.disabled = false;
    }
  });

  function showDryRun(req: BackupPruneRequest, dry: BackupPruneResult): void {
    if (dry.removed.length === 0) {
      replace(
        outcome,
        h("p", { class: "ok", "data-testid": "prune-nothing" }, `Nothing to prune: all ${dry.kept} completed backup${dry.kept === 1 ? "" : "s"} of ${req.server} stay.`),
      );
      return;
    }
    const n = dry.removed.length;
    const confirm = h("button", { type: "button", class: "btn btn-danger", "data-testid": "prune-confirm" }, `Remove ${n} backup${n === 1 ? "" : "s"}`);
    const cancel = h("button", { type: "button", class: "btn", "data-testid": "prune-cancel" }, "Cancel");
    cancel.addEventListener("click", () => {
      request = null;
      replace(outcome);
    });
    // Remove exactly what was shown: the core removes only these ids, each still qualifying.
    const shown = { ...req, only: dry.removed.map((b) => b.id) };
    request = shown;
    confirm.addEventListener("click", () => void run(shown, confirm, cancel));
    replace(
      outcome,
      h(
        "div",
        { class: "prune-dry-run", "data-testid": "prune-dry-run" },
        h("p", { class: "confirm-text" }, `These ${n} backup${n === 1 ? "" : "s"} of ${req.server} would be removed from storage and marked pruned; ${dry.kept} completed backup${dry.kept === 1 ? "" : "s"} stay.`),
        list(dry, "prune-dry-run-list"),
        h("div", { class: "row-actions left" }, confirm, cancel),
      ),
    );
  }

  async function run(req: BackupPruneRequest, confirm: HTMLButtonElement, cancel: HTMLButtonElement): Promise<void> {
    if (request !== req) return;
    confirm.disabled = true;
    cancel.disabled = true;
    confirm.textContent = "Removing…";
    try {
      const done = await call("backup_prune", { ...req, dry_run: false });
      request = null;
      replace(
        outcome,
        h(
          "div",
          { "data-testid": "prune-done" },
          h("p", { class: "ok" }, `Removed ${done.removed.length} backup${done.removed.length === 1 ? "" : "s"}; ${done.kept} stay.`),
          done.removed.length > 0 ? list(done, "prune-done-list") : null,
        ),
      );
      hooks.pruned();
    } catch (err) {
      replace(outcome, errorBox(err, "prune-error"));
    }
  }

  return form;
}
