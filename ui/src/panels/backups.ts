// Backups panel: "Back up now" (a full physical backup of a registered server into a storage
// target, run as a core job with live progress), the catalogue of backups with a filter by
// server, per-backup "Verify" and "Details", and "Prune…" (dry run first, then confirmed).
//
// Backups, verifications and restores run in the core as jobs; their watches live at module
// level (see backups-common.ts), so leaving the panel does not lose a running backup.

import { h, replace } from "../dom";
import { errorBox } from "../errors";
import type { BackupKeyStatus } from "../generated/BackupKeyStatus";
import type { BackupSummary } from "../generated/BackupSummary";
import type { BackupRunRequest } from "../generated/BackupRunRequest";
import type { CompressOn } from "../generated/CompressOn";
import type { ServerSummary } from "../generated/ServerSummary";
import type { StorageTarget } from "../generated/StorageTarget";
import { call } from "../ipc";
import {
  JobWatch,
  bytes,
  compression,
  duration,
  flag,
  isBackupSummary,
  progressBar,
  progressView,
  ratio,
  serverName,
  shortId,
  statusBadge,
  when,
  whenShort,
} from "./backups-common";
import { loadDetail } from "./backups-detail";
import { pruneCard } from "./backups-prune";
import { bindVerify, startVerify, verifications } from "./backups-verify";

const COMPRESSIONS: [string, string][] = [
  ["none", "none"],
  ...Array.from({ length: 19 }, (_, i): [string, string] => {
    const level = i + 1;
    const note = level === 1 ? " (fastest, default)" : level === 3 ? " (balanced)" : level === 19 ? " (smallest, slow)" : "";
    return [`zstd:${level}`, `zstd level ${level}${note}`];
  }),
];

// Kept across visits of the panel (not across restarts of the app).
let filterServer = "";
const COMPRESS_ON: [CompressOn, string][] = [
  ["auto", "the server when it can (15+ with zstd), else here"],
  ["server", "the server, or refuse"],
  ["client", "here (leave the server's CPUs alone)"],
];

const form: { server: string; storage: string; compress: string; compressOn: CompressOn; encrypt: boolean } = {
  server: "",
  storage: "",
  compress: "zstd:1",
  compressOn: "auto",
  encrypt: false,
};
let run: { watch: JobWatch<BackupSummary>; request: BackupRunRequest } | null = null;

export function renderBackups(container: HTMLElement): void {
  // ---- "Back up now" ----
  const serverSelect = h("select", { id: "backup-server", "data-testid": "backup-server" });
  const storageSelect = h("select", { id: "backup-storage", "data-testid": "backup-storage" });
  const compressSelect = h(
    "select",
    { id: "backup-compress", "data-testid": "backup-compress" },
    ...COMPRESSIONS.map(([value, label]) => h("option", { value, selected: value === form.compress }, label)),
  );
  const compressOnSelect = h(
    "select",
    { id: "backup-compress-on", "data-testid": "backup-compress-on" },
    ...COMPRESS_ON.map(([value, label]) => h("option", { value, selected: value === form.compressOn }, label)),
  );
  const encrypt = h("input", { id: "backup-encrypt", "data-testid": "backup-encrypt", type: "checkbox", checked: form.encrypt });
  const keygenButton = h("button", { type: "button", class: "btn btn-small", "data-testid": "backup-keygen" }, "Create encryption key");
  const keyFeedback = h("span", { class: "key-feedback", "data-testid": "backup-key-feedback" });
  // Whether the key here opens the encrypted backups on record (`backup key` in the CLI).
  // Holds a line from the start so the table below does not jump when the answer arrives (a
  // click aimed at a row would land elsewhere).
  const keyStatus = h(
    "div",
    { class: "key-status", "data-testid": "backup-key-status", "aria-live": "polite" },
    h("p", { class: "muted" }, "Checking the backup key…"),
  );
  const startButton = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "backup-start" }, "Back up now");
  const setupNote = h("div", { "data-testid": "backup-setup-note" });
  const runArea = h("div", { class: "run-area", "data-testid": "backup-run-area", "aria-live": "polite" });

  const runForm = h(
    "form",
    { class: "card backup-form", "data-testid": "backup-form", novalidate: true },
    h("h2", {}, "Back up now"),
    h(
      "div",
      { class: "form-grid" },
      h("label", { for: "backup-server" }, "Server"),
      serverSelect,
      h("label", { for: "backup-storage" }, "Storage target"),
      storageSelect,
      h("label", { for: "backup-compress" }, "Compression"),
      compressSelect,
      h("label", { for: "backup-compress-on" }, "Compressed by"),
      compressOnSelect,
      h("span", {}),
      h(
        "div",
        { class: "inline-field" },
        h("label", { class: "checkbox", for: "backup-encrypt" }, encrypt, " Encrypt (AES-256-GCM; the key stays in the OS keyring)"),
        keygenButton,
        keyFeedback,
      ),
    ),
    keyStatus,
    setupNote,
    h(
      "div",
      { class: "form-actions" },
      startButton,
      h("span", { class: "form-help" }, "A full physical backup over the replication protocol; the server keeps running. Each backup is signed with the audit log's key."),
    ),
    runArea,
  );

  // ---- Catalogue ----
  const filterSelect = h("select", { id: "backups-filter", "data-testid": "backups-filter" });
  const pruneButton = h("button", { type: "button", class: "btn", "data-testid": "backups-prune" }, "Prune…");
  const refreshButton = h("button", { type: "button", class: "btn", "data-testid": "backups-refresh" }, "Refresh");
  const pruneSlot = h("div", { "data-testid": "backups-prune-slot" });
  const tableArea = h("div", { "data-testid": "backups-table-area" });
  const listCard = h(
    "div",
    { class: "card list-card", "data-testid": "backups-list" },
    h(
      "div",
      { class: "card-head" },
      h("h2", { "data-testid": "backups-total" }, "Backups"),
      h(
        "div",
        { class: "toolbar" },
        h("label", { for: "backups-filter" }, "Server"),
        filterSelect,
        refreshButton,
        pruneButton,
      ),
    ),
    pruneSlot,
    tableArea,
  );

  const section = h(
    "section",
    { class: "panel", "data-testid": "panel-backups" },
    h(
      "header",
      { class: "panel-header" },
      h("h1", {}, "Backups"),
      h("span", { class: "muted" }, "Full physical backups: compressed, encrypted, signed and verifiable"),
    ),
    runForm,
    listCard,
  );
  container.append(section);

  let servers: ServerSummary[] = [];
  let storages: StorageTarget[] = [];
  let backups: BackupSummary[] = [];

  // Per backup, the areas under its row (moved, not rebuilt, when the table is redrawn so a
  // running verification or an open detail survives a refresh).
  const verifyAreas = new Map<string, HTMLElement>();
  const detailAreas = new Map<string, HTMLElement>();

  function remember(): void {
    form.server = serverSelect.value;
    form.storage = storageSelect.value;
    form.compress = compressSelect.value;
    form.compressOn = compressOnSelect.value as CompressOn;
    form.encrypt = encrypt.checked;
  }
  for (const field of [serverSelect, storageSelect, compressSelect, compressOnSelect, encrypt]) field.addEventListener("change", remember);

  function fillSelect(select: HTMLSelectElement, names: string[], chosen: string, empty: string): void {
    if (names.length === 0) {
      replace(select, h("option", { value: "" }, empty));
      select.disabled = true;
      return;
    }
    select.disabled = false;
    const pick = names.includes(chosen) ? chosen : names[0];
    replace(select, ...names.map((n) => h("option", { value: n, selected: n === pick }, n)));
    select.value = pick;
  }

  function renderSetup(): void {
    fillSelect(serverSelect, servers.map((s) => s.name), form.server, "no server registered");
    fillSelect(storageSelect, storages.map((s) => `${s.name}`), form.storage, "no storage target");
    for (const option of storageSelect.options) {
      const target = storages.find((s) => s.name === option.value);
      if (target) option.textContent = `${target.name} — ${target.url}`;
    }
    remember();
    const notes: HTMLElement[] = [];
    if (servers.length === 0) {
      notes.push(h("li", {}, "Register the server to back up in the ", h("a", { href: "#/servers" }, "Servers"), " panel."));
    }
    if (storages.length === 0) {
      notes.push(
        h(
          "li",
          {},
          "Add a storage target with the command line: ",
          h("span", { class: "mono" }, "pganalytics storage add NAME file:///backups"),
          " (or s3://, gcs://, azblob:// URLs).",
        ),
      );
    }
    replace(setupNote, notes.length ? h("ul", { class: "setup-note" }, ...notes) : null);
    startButton.disabled = run !== null && !run.watch.finished ? true : servers.length === 0 || storages.length === 0;

    const known = [...new Set([...servers.map((s) => s.name), ...backups.map((b) => b.server).filter((s): s is string => !!s)])].sort();
    replace(
      filterSelect,
      h("option", { value: "", selected: filterServer === "" }, "All servers"),
      ...known.map((n) => h("option", { value: n, selected: n === filterServer }, n)),
    );
    filterSelect.value = known.includes(filterServer) ? filterServer : "";
  }

  async function loadSetup(): Promise<void> {
    try {
      [servers, storages] = await Promise.all([call("server_list"), call("storage_list")]);
    } catch (err) {
      replace(setupNote, errorBox(err, "backup-setup-error"));
      return;
    }
    if (section.isConnected) renderSetup();
  }

  // ---- Encryption key ----
  keygenButton.addEventListener("click", async () => {
    keygenButton.disabled = true;
    replace(keyFeedback, h("span", { class: "muted" }, "Creating…"));
    try {
      const k = await call("backup_keygen", {});
      void loadKeyStatus();
      keyFeedback.dataset.state = "created";
      replace(
        keyFeedback,
        h("span", { class: "ok" }, "Key created: "),
        h("span", { class: "mono", "data-testid": "backup-key-fingerprint" }, k.fingerprint),
        h("span", { class: "muted" }, ` (${k.location})`),
      );
    } catch (err) {
      const e = errorBox(err, "backup-keygen-error");
      if (e.dataset.code === "already_exists") {
        keyFeedback.dataset.state = "exists";
        replace(keyFeedback, h("span", { class: "ok", "data-testid": "backup-key-exists" }, "A backup key already exists."));
      } else {
        keyFeedback.dataset.state = "error";
        replace(keyFeedback, e);
      }
    } finally {
      keygenButton.disabled = false;
    }
  });

  async function loadKeyStatus(): Promise<void> {
    let status: BackupKeyStatus;
    try {
      status = await call("backup_key_status", {});
    } catch (err) {
      replace(keyStatus, errorBox(err, "backup-key-status-error"));
      return;
    }
    if (!section.isConnected) return;
    const line = status.key
      ? h(
          "p",
          { class: "muted" },
          "Backup key ",
          h("span", { class: "mono", "data-testid": "backup-key-status-fingerprint" }, status.key.fingerprint),
          ` (${status.key.location}) opens ${status.opens} encrypted backup${status.opens === 1 ? "" : "s"}.`,
        )
      : h("p", { class: "muted" }, `No usable backup key here: ${status.problem ?? "none configured"}.`);
    const others = status.need_other_keys.reduce((n, u) => n + u.backups, 0);
    const alarm =
      others > 0
        ? h(
            "div",
            { class: "verify-alarm key-alarm", role: "alert", "data-testid": "backup-key-alarm" },
            h(
              "p",
              { class: "verify-headline" },
              `${others} encrypted backup${others === 1 ? " needs" : "s need"} a key that is not here`,
            ),
            h(
              "ul",
              {},
              ...status.need_other_keys.map((u) =>
                h("li", {}, h("span", { class: "mono" }, u.fingerprint), `: ${u.backups} backup${u.backups === 1 ? "" : "s"}, newest ${u.newest ? when(u.newest) : "unknown"}`),
              ),
            ),
            h("p", {}, status.hint ?? "Keep every key that made a backup you may restore: without it that backup cannot be read by anyone."),
          )
        : null;
    replace(keyStatus, line, alarm);
  }

  // ---- Running a backup ----
  function drawRun(): void {
    if (!run) {
      replace(runArea);
      return;
    }
    const { watch, request } = run;
    const what = `${request.server} → ${request.storage}`;
    if (!watch.finished) {
      const view = progressView(watch.status, "the server's estimate");
      replace(
        runArea,
        h(
          "div",
          { class: "run-running", "data-testid": "backup-run-running" },
          h("div", { class: "verify-label" }, h("span", { class: "spinner" }), ` Backing up ${what}: `, h("span", { "data-testid": "backup-run-label" }, view.label)),
          progressBar(view, "backup-run-progress"),
        ),
      );
      startButton.disabled = true;
      return;
    }
    startButton.disabled = servers.length === 0 || storages.length === 0;
    const dismiss = h("button", { type: "button", class: "btn btn-small", "data-testid": "backup-run-dismiss" }, "Dismiss");
    dismiss.addEventListener("click", () => {
      run = null;
      drawRun();
    });
    if (!watch.result) {
      replace(runArea, errorBox(watch.error, "backup-run-error"), dismiss);
      return;
    }
    const b = watch.result;
    replace(
      runArea,
      h(
        "div",
        { class: "verify-intact run-result", "data-testid": "backup-run-result", "data-id": b.id, "data-status": b.status },
        h("div", { class: "verify-headline" }, h("span", { class: "verify-icon" }, "✓"), `Backup of ${serverName(b)} completed`),
        h(
          "p",
          { "data-testid": "backup-run-summary" },
          `${bytes(b.source_size_bytes)} read, ${bytes(b.stored_size_bytes)} stored (${ratio(b.compression_ratio)}, ${compression(b)}${b.encrypted ? ", encrypted" : ""}) in ${duration(b.duration_seconds)}`,
          b.duration_seconds && b.source_size_bytes ? ` · ${bytes(b.source_size_bytes / b.duration_seconds)}/s` : "",
          ".",
        ),
        h("p", { class: "muted mono wrap" }, `${b.name} · LSN ${b.start_lsn ?? "?"} → ${b.stop_lsn ?? "?"} · ${b.destination ?? ""}`),
        h("div", { class: "verify-dismiss" }, dismiss),
      ),
    );
  }

  function bindRun(): void {
    if (!run) return;
    const watch = run.watch;
    watch.subscribe(() => {
      if (!section.isConnected) {
        watch.subscribe(null);
        return;
      }
      drawRun();
      if (watch.finished) void loadBackups();
    });
  }

  runForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (run && !run.watch.finished) return;
    remember();
    const request: BackupRunRequest = {
      server: form.server,
      storage: form.storage,
      compress: form.compress,
      compress_on: form.compressOn,
      encrypt: form.encrypt,
    };
    startButton.disabled = true;
    replace(runArea, h("p", { class: "muted" }, h("span", { class: "spinner" }), " Starting the backup…"));
    try {
      const { id } = await call("backup_start", request);
      run = { watch: new JobWatch(id, isBackupSummary, "the backup"), request };
      bindRun();
      drawRun();
      // The catalogue lists the backup as running from its first moment.
      window.setTimeout(() => void loadBackups(), 1_000);
    } catch (err) {
      startButton.disabled = false;
      replace(runArea, errorBox(err, "backup-run-error"));
    }
  });

  // ---- Catalogue ----
  let loadGeneration = 0;

  async function loadBackups(): Promise<void> {
    const gen = ++loadGeneration;
    listCard.dataset.loading = "true";
    try {
      const list = await call("backup_list", filterServer ? { server: filterServer } : {});
      if (gen !== loadGeneration || !section.isConnected) return;
      backups = list;
      renderTable();
      renderSetup();
      void loadKeyStatus();
    } catch (err) {
      if (gen === loadGeneration) replace(tableArea, errorBox(err, "backups-error"));
    } finally {
      if (gen === loadGeneration) delete listCard.dataset.loading;
    }
  }

  function verifyArea(id: string): HTMLElement {
    let area = verifyAreas.get(id);
    if (!area) {
      area = h("div", { class: "backup-verify-area", "data-testid": "backup-verify-area", "data-id": id });
      verifyAreas.set(id, area);
    }
    // (Re)bound on every draw: an area filtered out of the table meanwhile stopped listening.
    const watch = verifications.get(id);
    if (watch) bindVerify(area, watch, () => dismissVerify(id), () => verified(id));
    return area;
  }

  /** A verification ended: the list and the backup's open details show its outcome. */
  function verified(id: string): void {
    void loadBackups();
    const detail = detailAreas.get(id);
    if (detail) void loadDetail(detail, id);
  }

  function dismissVerify(id: string): void {
    verifications.get(id)?.subscribe(null);
    verifications.delete(id);
    verifyAreas.delete(id);
    renderTable();
  }

  async function verify(id: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    // A new run replaces an earlier result.
    verifications.get(id)?.subscribe(null);
    verifications.delete(id);
    verifyAreas.delete(id);
    try {
      await startVerify(id);
    } catch (err) {
      const dismiss = h("button", { type: "button", class: "btn btn-small", onclick: () => dismissVerify(id) }, "Dismiss");
      replace(verifyArea(id), errorBox(err, "backup-verify-error"), dismiss);
    }
    renderTable();
  }

  function toggleDetail(id: string): void {
    if (detailAreas.has(id)) {
      detailAreas.delete(id);
    } else {
      const area = h("div", { class: "backup-detail-area", "data-testid": "backup-detail-area", "data-id": id });
      detailAreas.set(id, area);
      void loadDetail(area, id);
    }
    renderTable();
  }

  function row(b: BackupSummary): HTMLElement[] {
    const verifying = verifications.get(b.id);
    const verifyButton = h(
      "button",
      {
        type: "button",
        class: "btn btn-small",
        "data-testid": "backup-verify",
        disabled: b.status !== "completed" || (verifying !== undefined && !verifying.finished),
      },
      "Verify",
    );
    verifyButton.addEventListener("click", () => void verify(b.id, verifyButton));
    const detailOpen = detailAreas.has(b.id);
    const tr = h(
      "tr",
      {
        class: `backup-row backup-row-${b.status}`,
        "data-testid": "backup-row",
        "data-id": b.id,
        "data-server": b.server ?? "",
        "data-status": b.status,
        "data-verified": String(b.verified),
        "data-encrypted": String(b.encrypted),
      },
      h("td", { class: "name", "data-testid": "backup-row-server" }, serverName(b), h("div", { class: "mono resource-id", title: b.id }, shortId(b.id))),
      h("td", { class: "started", "data-testid": "backup-row-started", title: when(b.started_at) }, whenShort(b.started_at)),
      h("td", {}, statusBadge(b)),
      h("td", { class: "nowrap num", "data-testid": "backup-row-size" }, bytes(b.source_size_bytes)),
      h("td", { class: "nowrap num", "data-testid": "backup-row-stored" }, bytes(b.stored_size_bytes)),
      h("td", { class: "nowrap num", "data-testid": "backup-row-ratio", title: compression(b) }, ratio(b.compression_ratio)),
      h("td", {}, flag(b.encrypted, "backup-row-encrypted")),
      h("td", {}, flag(b.verified, "backup-row-verified", b.verified_at ? `${b.verified ? "verified" : "verification failed"} ${when(b.verified_at)}` : "not verified yet")),
      h("td", { class: "nowrap num", "data-testid": "backup-row-duration" }, duration(b.duration_seconds)),
      h(
        "td",
        { class: "actions" },
        h(
          "div",
          { class: "row-actions" },
          verifyButton,
          h(
            "button",
            { type: "button", class: "btn btn-small", "data-testid": "backup-details", "aria-expanded": String(detailOpen), onclick: () => toggleDetail(b.id) },
            detailOpen ? "Hide details" : "Details",
          ),
        ),
      ),
    );
    const rows = [tr];
    if (b.status === "failed" && b.failure_reason) {
      rows.push(h("tr", { class: "detail-row" }, h("td", { colspan: 10, class: "bad-text small", "data-testid": "backup-row-failure" }, b.failure_reason)));
    }
    if (verifications.has(b.id) || verifyAreas.has(b.id) || detailOpen) {
      rows.push(
        h(
          "tr",
          { class: "detail-row", "data-testid": "backup-extra", "data-id": b.id },
          h("td", { colspan: 10 }, verifications.has(b.id) || verifyAreas.has(b.id) ? verifyArea(b.id) : null, detailOpen ? detailAreas.get(b.id) : null),
        ),
      );
    }
    return rows;
  }

  function renderTable(): void {
    const filtered = filterServer !== "";
    replace(listCard.querySelector("[data-testid=backups-total]")!, `Backups (${backups.length}${filtered ? ` of ${filterServer}` : ""})`);
    if (backups.length === 0) {
      replace(
        tableArea,
        h("p", { class: "empty", "data-testid": "backups-empty" }, filtered ? `No backup of ${filterServer} yet.` : "No backup yet. Take the first one with “Back up now”."),
      );
      return;
    }
    replace(
      tableArea,
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { class: "table backups-table", "data-testid": "backups-table" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ...["Server", "Started", "Status", "Size", "Stored", "Ratio", "Encrypted", "Verified", "Duration", ""].map((t) => h("th", {}, t)),
            ),
          ),
          h("tbody", {}, ...backups.flatMap(row)),
        ),
      ),
    );
  }

  filterSelect.addEventListener("change", () => {
    filterServer = filterSelect.value;
    void loadBackups();
  });
  refreshButton.addEventListener("click", () => {
    void loadSetup();
    void loadBackups();
  });
  pruneButton.addEventListener("click", () => {
    if (pruneSlot.firstChild) {
      replace(pruneSlot);
      return;
    }
    const names = servers.map((s) => s.name);
    replace(
      pruneSlot,
      pruneCard(names, filterServer || names[0] || null, {
        pruned: () => void loadBackups(),
        close: () => replace(pruneSlot),
      }),
    );
  });

  replace(tableArea, h("p", { class: "muted", "data-testid": "backups-loading" }, h("span", { class: "spinner" }), " Loading…"));
  drawRun();
  bindRun();
  void loadSetup();
  void loadBackups();
}
