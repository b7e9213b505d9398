// App shell: sidebar navigation, the current panel, and the repository status line.

import "./style.css";
import { h, replace } from "./dom";
import { errorTitle } from "./errors";
import { benchMark, call, startupStatus, toCoreError } from "./ipc";
import { PLANNED, renderPlanned } from "./panels/planned";
import { renderAudit } from "./panels/audit";
import { renderBackups } from "./panels/backups";
import { renderCharts } from "./panels/charts";
import { renderRestore } from "./panels/restore";
import { renderServers } from "./panels/servers";

benchMark("script_started");

interface Route {
  key: string;
  label: string;
  render: (container: HTMLElement) => void;
}

const ROUTES: Route[] = [
  { key: "servers", label: "Servers", render: renderServers },
  { key: "charts", label: "Engine charts", render: renderCharts },
  { key: "audit", label: "Audit log", render: renderAudit },
  { key: "backups", label: "Backups", render: renderBackups },
  { key: "restore", label: "Restore", render: renderRestore },
  ...Object.entries(PLANNED).map(([key, panel]) => ({
    key,
    label: panel.title,
    render: (c: HTMLElement) => renderPlanned(c, key),
  })),
];

const root = document.getElementById("app")!;
const nav = h("nav", { class: "nav", "aria-label": "Panels" });
const main = h("main", { class: "content", id: "panel" });
const repoStatus = h("span", { class: "status-repo", "data-testid": "status-repo" });
const appVersion = h("span", { class: "status-version", "data-testid": "status-version" });

root.append(
  h(
    "div",
    { class: "layout" },
    h(
      "aside",
      { class: "sidebar" },
      h("div", { class: "brand" }, h("img", { src: "/icon.png", alt: "", width: 24, height: 24 }), "pgAnalytics"),
      nav,
    ),
    main,
    h("footer", { class: "statusbar", "data-testid": "status-line" }, repoStatus, appVersion),
  ),
);

function currentKey(): string {
  const key = location.hash.replace(/^#\/?/, "");
  return ROUTES.some((r) => r.key === key) ? key : "servers";
}

function show(): void {
  const key = currentKey();
  replace(
    nav,
    ...ROUTES.map((r) =>
      h(
        "a",
        {
          href: `#/${r.key}`,
          class: r.key === key ? "nav-item active" : "nav-item",
          "data-testid": `nav-${r.key}`,
          "aria-current": r.key === key ? "page" : undefined,
        },
        r.label,
        r.key in PLANNED ? h("span", { class: "nav-soon" }, "soon") : null,
      ),
    ),
  );
  replace(main);
  ROUTES.find((r) => r.key === key)!.render(main);
}

window.addEventListener("hashchange", show);
show();

// ---- Status line: "starting repository…" until the core has opened it ----

async function showRepoStatus(): Promise<void> {
  replace(repoStatus, h("span", { class: "spinner" }), " Starting repository…");
  try {
    const initial = await startupStatus();
    if (initial.state === "starting") {
      replace(
        repoStatus,
        h("span", { class: "spinner" }),
        " Starting repository… (the first start creates the embedded PostgreSQL cluster and takes a few seconds)",
      );
    }
  } catch {
    // `repo_status` below reports the same failure.
  }
  try {
    const s = await call("repo_status");
    const kind = s.kind === "embedded" ? "Embedded cluster running" : "External repository";
    const shortVersion = s.server_version.split(" ")[0];
    replace(
      repoStatus,
      h("span", { class: "dot dot-ok" }),
      h("span", { class: "nowrap", "data-testid": "status-repo-kind", "data-kind": s.kind }, kind),
      h("span", { class: "sep" }, "·"),
      h("span", { class: "status-location", "data-testid": "status-repo-location" }, s.location),
      h("span", { class: "sep" }, "·"),
      h("span", { class: "nowrap", "data-testid": "status-repo-version" }, `PostgreSQL ${shortVersion}`),
      h("span", { class: "sep" }, "·"),
      h("span", { class: "nowrap" }, `${s.migrations.length} migrations`),
    );
    repoStatus.title = `Data directory: ${s.data_dir}\nPostgreSQL ${s.server_version}`;
  } catch (err) {
    const e = toCoreError(err);
    replace(
      repoStatus,
      h("span", { class: "dot dot-bad" }),
      h("span", { class: "status-error", "data-testid": "status-repo-error" }, `Repository unavailable — ${errorTitle(e.code)}: ${e.message}`),
    );
    repoStatus.title = e.hint ?? "";
  }
}

async function showVersion(): Promise<void> {
  try {
    const v = await call("version");
    appVersion.textContent = `pgAnalytics ${v.version}`;
  } catch {
    appVersion.textContent = "pgAnalytics";
  }
}

void showRepoStatus();
void showVersion();
