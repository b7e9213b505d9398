// Servers panel: the registry of monitored PostgreSQL servers (list, add, check, remove).

import { afterPaint, h, replace } from "../dom";
import { errorBox } from "../errors";
import type { FeatureReadiness } from "../generated/FeatureReadiness";
import type { ServerCheck } from "../generated/ServerCheck";
import type { ServerSummary } from "../generated/ServerSummary";
import { benchMark, call } from "../ipc";

type CheckState =
  | { state: "running" }
  | { state: "done"; result: ServerCheck }
  | { state: "failed"; error: unknown };

const FEATURE_LABELS: Record<string, string> = {
  engine_metrics: "Engine metrics",
  base_backup: "Base backups",
  wal_archiving: "WAL archiving",
  point_in_time_recovery: "Point-in-time recovery",
  incremental_backup: "Incremental backups",
};

/** `150014` → `15.14`, `90624` → `9.6.24`. */
export function formatVersionNum(num: number): string {
  if (num >= 100000) return `${Math.floor(num / 10000)}.${num % 10000}`;
  return `${Math.floor(num / 10000)}.${Math.floor(num / 100) % 100}.${num % 100}`;
}

function yesNo(value: boolean, testid: string): HTMLElement {
  return h(
    "span",
    { class: value ? "flag flag-yes" : "flag flag-no", "data-testid": testid, "data-value": String(value) },
    value ? "yes" : "no",
  );
}

let firstRender = true;

export function renderServers(container: HTMLElement): void {
  let servers: ServerSummary[] | null = null;
  let listError: unknown = null;
  const checks = new Map<string, CheckState>();
  const confirmingRemove = new Set<string>();
  const removing = new Set<string>();

  // ---- Add form (built once so typed input survives list refreshes) ----
  const nameInput = h("input", {
    id: "server-name",
    "data-testid": "server-name",
    type: "text",
    placeholder: "prod-main",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const dsnInput = h("input", {
    id: "server-dsn",
    "data-testid": "server-dsn",
    type: "text",
    placeholder: "postgresql://monitor@db1.example.com:5432/postgres  or  host=db1 user=monitor dbname=postgres",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const skipCheck = h("input", { id: "server-skip-check", "data-testid": "server-skip-check", type: "checkbox" });
  const addButton = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "server-add" }, "Add server");
  const addFeedback = h("div", { class: "form-feedback", "data-testid": "add-feedback", "aria-live": "polite" });

  const form = h(
    "form",
    { class: "card add-form", "data-testid": "add-server-form", novalidate: true },
    h("h2", {}, "Add a server"),
    h(
      "div",
      { class: "form-grid" },
      h("label", { for: "server-name" }, "Name"),
      nameInput,
      h("label", { for: "server-dsn" }, "Connection string"),
      dsnInput,
      h("span", {}),
      h(
        "div",
        { class: "form-help" },
        "libpq URI or key=value form; PG* variables, .pgpass and service= work as with psql. A password in it is moved to the OS keyring and never stored in the repository.",
      ),
      h("span", {}),
      h(
        "label",
        { class: "checkbox", for: "server-skip-check" },
        skipCheck,
        " Register without connecting first (server down for maintenance)",
      ),
    ),
    h("div", { class: "form-actions" }, addButton, addFeedback),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = nameInput.value.trim();
    const dsn = dsnInput.value.trim();
    addButton.disabled = true;
    replace(addFeedback, h("span", { class: "muted" }, skipCheck.checked ? "Registering…" : "Connecting to check the server…"));
    try {
      const added = await call("server_add", { name, dsn, skip_check: skipCheck.checked || undefined });
      nameInput.value = "";
      dsnInput.value = "";
      skipCheck.checked = false;
      replace(addFeedback, h("span", { class: "ok", "data-testid": "add-ok" }, `Added ${added.name}.`));
      await reload();
    } catch (err) {
      replace(addFeedback, errorBox(err, "add-error"));
    } finally {
      addButton.disabled = false;
    }
  });

  // ---- Server list ----
  const listBody = h("div", { class: "card list-card", "data-testid": "server-list" });

  async function reload(): Promise<void> {
    try {
      servers = await call("server_list");
      listError = null;
      for (const name of [...checks.keys()]) {
        if (!servers.some((s) => s.name === name)) checks.delete(name);
      }
    } catch (err) {
      listError = err;
    }
    renderList();
  }

  async function runCheck(name: string): Promise<void> {
    checks.set(name, { state: "running" });
    renderList();
    try {
      checks.set(name, { state: "done", result: await call("server_check", { name }) });
    } catch (error) {
      checks.set(name, { state: "failed", error });
    }
    renderList();
  }

  async function remove(name: string): Promise<void> {
    confirmingRemove.delete(name);
    removing.add(name);
    renderList();
    try {
      await call("server_remove", { name });
      checks.delete(name);
      replace(addFeedback, h("span", { class: "ok", "data-testid": "remove-ok" }, `Removed ${name}.`));
    } catch (err) {
      replace(addFeedback, errorBox(err, "remove-error"));
    } finally {
      removing.delete(name);
    }
    await reload();
  }

  function actions(server: ServerSummary): HTMLElement {
    const name = server.name;
    const check = checks.get(name);
    if (confirmingRemove.has(name)) {
      return h(
        "div",
        { class: "row-actions" },
        h("span", { class: "confirm-text" }, "Remove this server?"),
        h("button", { class: "btn btn-danger", "data-testid": "server-remove-confirm", onclick: () => void remove(name) }, "Remove"),
        h(
          "button",
          {
            class: "btn",
            "data-testid": "server-remove-cancel",
            onclick: () => {
              confirmingRemove.delete(name);
              renderList();
            },
          },
          "Cancel",
        ),
      );
    }
    return h(
      "div",
      { class: "row-actions" },
      h(
        "button",
        {
          class: "btn",
          "data-testid": "server-check",
          disabled: check?.state === "running" || removing.has(name),
          onclick: () => void runCheck(name),
        },
        check?.state === "running" ? "Checking…" : "Check",
      ),
      h(
        "button",
        {
          class: "btn btn-quiet",
          "data-testid": "server-remove",
          disabled: removing.has(name),
          onclick: () => {
            confirmingRemove.add(name);
            renderList();
          },
        },
        removing.has(name) ? "Removing…" : "Remove",
      ),
    );
  }

  function featureList(features: FeatureReadiness[]): HTMLElement {
    return h(
      "table",
      { class: "table compact", "data-testid": "check-features" },
      h("thead", {}, h("tr", {}, h("th", {}, "Feature"), h("th", {}, "Ready"), h("th", {}, "Detail"))),
      h(
        "tbody",
        {},
        ...features.map((f) =>
          h(
            "tr",
            { "data-feature": f.feature },
            h("td", {}, FEATURE_LABELS[f.feature] ?? f.feature),
            h("td", {}, yesNo(f.ready, `feature-${f.feature}`)),
            h("td", { class: "detail" }, f.detail),
          ),
        ),
      ),
    );
  }

  function checkDetails(check: CheckState): HTMLElement {
    if (check.state === "running") {
      return h("div", { class: "muted", "data-testid": "check-running" }, h("span", { class: "spinner" }), " Connecting…");
    }
    if (check.state === "failed") return errorBox(check.error, "check-error");
    const r = check.result;
    const facts: [string, HTMLElement | string, string][] = [
      ["PostgreSQL", formatVersionNum(r.server_version_num), "check-version-short"],
      ["server_version_num", String(r.server_version_num), "check-version-num"],
      ["Connected as", r.current_user, "check-user"],
      ["Superuser", yesNo(r.is_superuser, "check-superuser"), ""],
      ["Can read statistics", yesNo(r.can_read_stats, "check-can-read-stats"), ""],
      ["Can replicate", yesNo(r.can_replicate, "check-can-replicate"), ""],
      ["Role", r.in_recovery ? "standby (in recovery)" : "primary", "check-role"],
    ];
    return h(
      "div",
      { class: "check-result", "data-testid": "check-result" },
      h("div", { class: "check-version", "data-testid": "check-version" }, r.version),
      h(
        "dl",
        { class: "facts" },
        ...facts.flatMap(([label, value, testid]) => [
          h("dt", {}, label),
          h("dd", testid ? { "data-testid": testid } : {}, value),
        ]),
      ),
      h("h3", {}, "Feature readiness"),
      featureList(r.features),
      r.settings.length
        ? h(
            "details",
            { class: "settings" },
            h("summary", {}, `Settings (${r.settings.length})`),
            h(
              "table",
              { class: "table compact", "data-testid": "check-settings" },
              h(
                "tbody",
                {},
                ...r.settings.map((s) =>
                  h(
                    "tr",
                    {},
                    h("td", { class: "mono" }, s.name),
                    h("td", { class: "mono" }, s.value ?? h("span", { class: "muted" }, "not in this version")),
                  ),
                ),
              ),
            ),
          )
        : null,
    );
  }

  function renderList(): void {
    if (listError !== null) {
      replace(
        listBody,
        h("h2", {}, "Servers"),
        errorBox(listError, "list-error"),
        // A reload retries everything, the repository's start included.
        h("button", { class: "btn", "data-testid": "list-retry", onclick: () => location.reload() }, "Retry"),
      );
      return;
    }
    if (servers === null) {
      replace(
        listBody,
        h("h2", {}, "Servers"),
        h("p", { class: "muted", "data-testid": "list-loading" }, h("span", { class: "spinner" }), " Waiting for the repository…"),
      );
      return;
    }
    if (servers.length === 0) {
      replace(
        listBody,
        h("h2", {}, "Servers"),
        h(
          "p",
          { class: "empty", "data-testid": "list-empty" },
          "No servers registered yet. Add one with the form above; pgAnalytics connects to check it before saving.",
        ),
      );
      return;
    }
    const rows: HTMLElement[] = [];
    for (const s of servers) {
      rows.push(
        h(
          "tr",
          { "data-testid": "server-row", "data-server": s.name },
          h("td", { class: "name", "data-testid": "server-row-name" }, s.name),
          h("td", { class: "mono dsn", "data-testid": "server-row-dsn" }, s.dsn),
          h(
            "td",
            { "data-testid": "server-row-keyring" },
            s.password_in_keyring ? h("span", { class: "flag flag-yes" }, "in keyring") : h("span", { class: "muted" }, "none stored"),
          ),
          h("td", { class: "muted nowrap" }, new Date(s.created_at).toLocaleString()),
          h("td", { class: "actions" }, actions(s)),
        ),
      );
      const check = checks.get(s.name);
      if (check) {
        rows.push(
          h(
            "tr",
            { class: "detail-row", "data-testid": "server-detail", "data-server": s.name },
            h("td", { colspan: 5 }, checkDetails(check)),
          ),
        );
      }
    }
    replace(
      listBody,
      h("h2", {}, `Servers (${servers.length})`),
      h(
        "table",
        { class: "table", "data-testid": "server-table" },
        h(
          "thead",
          {},
          h("tr", {}, h("th", {}, "Name"), h("th", {}, "Connection (password removed)"), h("th", {}, "Password"), h("th", {}, "Added"), h("th", {}, "")),
        ),
        h("tbody", {}, ...rows),
      ),
    );
  }

  container.append(
    h(
      "section",
      { class: "panel", "data-testid": "panel-servers" },
      h(
        "header",
        { class: "panel-header" },
        h("h1", {}, "Servers"),
        h("span", { class: "muted" }, "PostgreSQL servers pgAnalytics monitors and backs up"),
      ),
      form,
      listBody,
    ),
  );
  renderList();

  const reportTimings = firstRender;
  firstRender = false;
  if (reportTimings) void afterPaint().then(() => benchMark("panel_rendered"));
  void reload().then(async () => {
    if (reportTimings) {
      await afterPaint();
      benchMark("data_loaded");
    }
  });
}
