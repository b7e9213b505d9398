// Engine charts panel: live charts of one server's engine metrics (checkpoints, buffers, WAL
// archiving, replication lag per standby), the advice, and how collection is going.
//
// The desktop app has no daemon collecting in the background, so this panel collects while it
// is open: every 15 s it takes a snapshot (`metrics_snapshot`), then asks the core for the
// charts (`metrics_charts`). The core draws the charts as SVG; they are shown through
// <img src="data:image/svg+xml,…">, which is inert (no scripts, no external loads) whatever
// text the SVG holds, and which the CSP allows (`img-src 'self' data:`).

import { h, replace } from "../dom";
import { errorBox } from "../errors";
import type { Advice } from "../generated/Advice";
import type { Chart } from "../generated/Chart";
import type { EngineCharts } from "../generated/EngineCharts";
import type { ServerSummary } from "../generated/ServerSummary";
import { call } from "../ipc";
import { formatVersionNum } from "./servers";

/** Collection interval while the panel is open (what `metrics collect` uses by default). */
const INTERVAL_MS = 15_000;
/** Until two snapshots exist no rate can be drawn: take the second one sooner. */
const FIRST_INTERVAL_MS = 3_000;

const WINDOWS: [string, string][] = [
  ["15m", "Last 15 minutes"],
  ["1h", "Last hour"],
  ["6h", "Last 6 hours"],
  ["1d", "Last 24 hours"],
];

const SEVERITY_LABELS: Record<Advice["severity"], string> = {
  critical: "Critical",
  warning: "Warning",
  info: "Info",
};

// Kept across visits of the panel (not across restarts of the app).
let chosenServer: string | null = null;
let chosenWindow = "1h";

function svgDataUrl(svg: string): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}

export function renderCharts(container: HTMLElement): void {
  const serverSelect = h("select", { id: "charts-server", "data-testid": "charts-server" });
  const windowSelect = h(
    "select",
    { id: "charts-window", "data-testid": "charts-window" },
    ...WINDOWS.map(([value, label]) => h("option", { value, selected: value === chosenWindow }, label)),
  );
  const collecting = h("div", { class: "collect-note", "data-testid": "charts-collecting" });
  const statusArea = h("div", { "data-testid": "charts-status" });
  const adviceArea = h("div", { class: "card", "data-testid": "charts-advice" });
  const grid = h("div", { class: "charts-grid", "data-testid": "charts-grid" });
  // Advice before the charts: what to do is the point of looking.
  const body = h("div", {}, statusArea, adviceArea, grid);

  const toolbar = h(
    "div",
    { class: "card charts-toolbar" },
    h("label", { for: "charts-server" }, "Server"),
    serverSelect,
    h("label", { for: "charts-window" }, "Window"),
    windowSelect,
    collecting,
  );

  const section = h(
    "section",
    { class: "panel", "data-testid": "panel-charts" },
    h(
      "header",
      { class: "panel-header" },
      h("h1", {}, "Engine charts"),
      h("span", { class: "muted" }, "Checkpoints, buffers, WAL archiving and replication of a monitored server"),
    ),
    toolbar,
    body,
  );
  container.append(section);

  // ---- Refresh loop ----
  let timer: number | undefined;
  let busy = false;
  let again = false;
  // Bumped when the server or window changes: answers to older requests are dropped.
  let generation = 0;
  const images = new Map<string, { figure: HTMLElement; img: HTMLImageElement; svg: string }>();

  function stop(): void {
    if (timer !== undefined) window.clearTimeout(timer);
    timer = undefined;
  }
  // Leaving the panel (another route) ends collection; the next visit starts a new loop.
  window.addEventListener("hashchange", stop, { once: true });

  function restart(): void {
    stop();
    generation += 1;
    images.clear();
    replace(grid);
    if (busy) again = true;
    else void tick();
  }

  async function tick(): Promise<void> {
    if (!section.isConnected || chosenServer === null) return;
    busy = true;
    const gen = generation;
    const server = chosenServer;
    let next = INTERVAL_MS;
    replace(collecting, h("span", { class: "spinner" }), " Taking a snapshot…");
    let snapshotError: unknown = null;
    try {
      await call("metrics_snapshot", { server });
    } catch (err) {
      // Recorded in the server's collection status too (shown below); kept for errors the
      // status cannot hold (the server was removed meanwhile).
      snapshotError = err;
    }
    try {
      const charts = await call("metrics_charts", {
        server,
        since: chosenWindow,
        utc_offset_minutes: -new Date().getTimezoneOffset(),
      });
      if (gen === generation) show(charts, snapshotError);
      if (charts.snapshots_in_window < 2 && snapshotError === null) next = FIRST_INTERVAL_MS;
    } catch (err) {
      if (gen === generation) {
        replace(statusArea, errorBox(err, "charts-error"));
        replace(collecting, h("span", { class: "dot dot-bad" }), " Charts unavailable");
      }
    } finally {
      busy = false;
    }
    if (!section.isConnected) return;
    if (again) {
      again = false;
      void tick();
    } else {
      stop();
      timer = window.setTimeout(() => void tick(), next);
    }
  }

  function show(c: EngineCharts, snapshotError: unknown): void {
    // Collection line: subtle, says that this panel is what collects.
    const latest = c.latest_snapshot_at ? new Date(c.latest_snapshot_at).toLocaleTimeString() : null;
    const failing = c.status.last_error ?? (snapshotError ? {} : null);
    replace(
      collecting,
      h("span", { class: failing ? "dot dot-bad" : "dot dot-live" }),
      h(
        "span",
        {},
        `Collecting every ${INTERVAL_MS / 1000} s while this panel is open`,
        h("span", { class: "sep" }, " · "),
        h(
          "span",
          { "data-testid": "charts-latest" },
          latest ? `last snapshot ${latest}` : "no snapshot yet",
        ),
        h("span", { class: "sep" }, " · "),
        `${c.snapshots_in_window} in window`,
        c.server_version_num ? h("span", { class: "sep" }, " · ") : null,
        c.server_version_num ? `PostgreSQL ${formatVersionNum(c.server_version_num)}` : null,
        c.in_recovery ? " (standby)" : null,
      ),
    );
    collecting.title =
      "The desktop app has no background collector: snapshots are taken only while this panel is open. " +
      "For continuous collection run `pganalytics serve` or `pganalytics metrics collect`.";

    // Collection error with its hint.
    if (c.status.last_error) {
      const n = c.status.consecutive_failures;
      replace(
        statusArea,
        h(
          "div",
          { class: "collect-failed", "data-testid": "charts-collect-failed" },
          `Collection failing${n > 1 ? ` (${n} attempts in a row)` : ""}`,
          c.status.last_success_at ? ` — last success ${new Date(c.status.last_success_at).toLocaleString()}` : "",
        ),
        errorBox(c.status.last_error, "charts-collect-error"),
      );
    } else if (snapshotError) {
      replace(statusArea, errorBox(snapshotError, "charts-collect-error"));
    } else {
      replace(statusArea);
    }

    showCharts(c.charts);
    showAdvice(c.advice, c.snapshots_in_window);
  }

  function showCharts(charts: Chart[]): void {
    const ids = charts.map((c) => c.id);
    if ([...images.keys()].join() !== ids.join()) {
      images.clear();
      replace(grid);
    }
    for (const chart of charts) {
      let entry = images.get(chart.id);
      if (!entry) {
        const img = h("img", {
          alt: chart.title,
          title: chart.title,
          width: chart.width,
          height: chart.height,
          "data-testid": "chart-image",
        });
        const figure = h("figure", { class: "chart-card", "data-testid": `chart-${chart.id}`, "data-chart": chart.id }, img);
        grid.append(figure);
        entry = { figure, img, svg: "" };
        images.set(chart.id, entry);
      }
      entry.figure.dataset.empty = String(chart.empty_message !== null);
      // Only a changed chart is decoded again (no flicker on identical refreshes).
      if (entry.svg !== chart.svg) {
        entry.img.src = svgDataUrl(chart.svg);
        entry.svg = chart.svg;
      }
    }
  }

  function showAdvice(advice: Advice[], snapshots: number): void {
    if (advice.length === 0) {
      replace(
        adviceArea,
        h("h2", {}, "Advice"),
        h(
          "p",
          { class: "muted", "data-testid": "charts-advice-none" },
          snapshots === 0
            ? "Advice appears once snapshots exist."
            : "Nothing in this window calls for action (checkpoints, background writer, archiver, replication slots).",
        ),
      );
      return;
    }
    replace(
      adviceArea,
      h("h2", {}, `Advice (${advice.length})`),
      h(
        "ul",
        { class: "advice-list" },
        ...advice.map((a) =>
          h(
            "li",
            { class: `advice advice-${a.severity}`, "data-testid": "charts-advice-item", "data-severity": a.severity },
            h("span", { class: `sev sev-${a.severity}` }, SEVERITY_LABELS[a.severity] ?? a.severity),
            h(
              "div",
              { class: "advice-text" },
              h("div", { class: "advice-finding" }, h("span", { class: "advice-topic" }, a.topic.replace(/_/g, " ")), a.finding),
              h("div", { class: "advice-action" }, h("strong", {}, "What to do: "), a.action),
            ),
          ),
        ),
      ),
    );
  }

  // ---- Server choice ----
  serverSelect.addEventListener("change", () => {
    chosenServer = serverSelect.value;
    restart();
  });
  windowSelect.addEventListener("change", () => {
    chosenWindow = windowSelect.value;
    restart();
  });

  function noServers(): void {
    toolbar.hidden = true;
    replace(
      body,
      h(
        "div",
        { class: "card" },
        h(
          "p",
          { class: "empty", "data-testid": "charts-no-servers" },
          "No servers registered yet. Add one in the ",
          h("a", { href: "#/servers" }, "Servers panel"),
          "; its charts appear here.",
        ),
      ),
    );
  }

  replace(grid, h("p", { class: "muted", "data-testid": "charts-loading" }, h("span", { class: "spinner" }), " Waiting for the repository…"));
  void (async () => {
    let servers: ServerSummary[];
    try {
      servers = await call("server_list");
    } catch (err) {
      toolbar.hidden = true;
      replace(body, errorBox(err, "charts-error"));
      return;
    }
    if (servers.length === 0) {
      noServers();
      return;
    }
    if (chosenServer === null || !servers.some((s) => s.name === chosenServer)) chosenServer = servers[0].name;
    replace(serverSelect, ...servers.map((s) => h("option", { value: s.name, selected: s.name === chosenServer }, s.name)));
    serverSelect.value = chosenServer;
    replace(grid);
    void tick();
  })();
}
