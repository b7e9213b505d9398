// Restore panel: a wizard that restores a completed backup into a new data directory.
//
//   1 server → 2 backup → 3 target folder (native folder dialog or typed) and whether to start
//   the restored server → 4 confirmation of exactly what will happen → 5 progress
//   (`backup_restore_start` + `job_status`) → 6 result with the measured duration.
//
// The wizard's state is kept at module level: leaving the panel while a restore runs and
// coming back shows it where it has got to (the restore itself runs in the core).

import { h, replace } from "../dom";
import { errorBox } from "../errors";
import type { BackupDetail } from "../generated/BackupDetail";
import type { BackupRestoreRequest } from "../generated/BackupRestoreRequest";
import type { BackupSummary } from "../generated/BackupSummary";
import type { RestoreSummary } from "../generated/RestoreSummary";
import type { ServerSummary } from "../generated/ServerSummary";
import { CoreError, call } from "../ipc";
import { JobWatch, bytes, duration, flag, progressBar, progressView, ratio, when } from "./backups-common";
import { formatVersionNum } from "./servers";
import { chooseFolder } from "./restore-folder";

type Step = 1 | 2 | 3 | 4 | 5 | 6;

const STEPS: { step: Step; label: string }[] = [
  { step: 1, label: "Server" },
  { step: 2, label: "Backup" },
  { step: 3, label: "Target folder" },
  { step: 4, label: "Confirm" },
  { step: 5, label: "Restore" },
  { step: 6, label: "Result" },
];

interface Wizard {
  step: Step;
  server: string | null;
  backup: BackupSummary | null;
  target: string;
  start: boolean;
  port: string;
  watch: JobWatch<RestoreSummary> | null;
  request: BackupRestoreRequest | null;
}

function fresh(): Wizard {
  return { step: 1, server: null, backup: null, target: "", start: true, port: "", watch: null, request: null };
}

let wizard: Wizard = fresh();

function isRestoreSummary(value: unknown): value is RestoreSummary {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { id?: unknown }).id === "string" &&
    typeof (value as { status?: unknown }).status === "string"
  );
}

/** `/srv/restore`, `C:\restore`, `\\host\share\restore`. */
function isAbsolute(path: string): boolean {
  return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\");
}

/** How to start a restored copy by hand the way the core's "start" does (port of your choice). */
function startCommand(dir: string): string {
  const quoted = `'${dir.replace(/'/g, "'\\''")}'`;
  return `pg_ctl -D ${quoted} -l ${quoted}/pganalytics-start.log -o "-p PORT -c listen_addresses=127.0.0.1 -c archive_mode=off" start`;
}

/** `17` from 170004 (the binaries a backup needs are those of its major version). */
function major(versionNum: number): number {
  return Math.floor(versionNum / 10000);
}

export function renderRestore(container: HTMLElement): void {
  const stepper = h("ol", { class: "stepper", "data-testid": "restore-steps" });
  const body = h("div", { class: "card wizard-body", "data-testid": "restore-body" });
  const section = h(
    "section",
    { class: "panel", "data-testid": "panel-restore" },
    h(
      "header",
      { class: "panel-header" },
      h("h1", {}, "Restore"),
      h("span", { class: "muted" }, "Restore a backup into a new data directory, step by step"),
    ),
    stepper,
    body,
  );
  container.append(section);

  function go(step: Step): void {
    wizard.step = step;
    draw();
  }

  function drawStepper(): void {
    replace(
      stepper,
      ...STEPS.map((s) =>
        h(
          "li",
          {
            class: s.step === wizard.step ? "step current" : s.step < wizard.step ? "step done" : "step",
            "aria-current": s.step === wizard.step ? "step" : undefined,
            "data-testid": s.step === wizard.step ? "restore-step-current" : undefined,
          },
          h("span", { class: "step-num" }, s.step < wizard.step ? "✓" : String(s.step)),
          s.label,
        ),
      ),
    );
  }

  /** The page of the current step; `data-step` tells the end-to-end test where the wizard is. */
  function page(title: string, ...children: (HTMLElement | string | null)[]): void {
    replace(body, h("div", { class: "wizard-page", "data-testid": "restore-step", "data-step": String(wizard.step) }, h("h2", {}, title), ...children));
  }

  function nav(back: (() => void) | null, next: HTMLButtonElement | null): HTMLElement {
    return h(
      "div",
      { class: "wizard-nav" },
      back ? h("button", { type: "button", class: "btn", "data-testid": "restore-back", onclick: back }, "‹ Back") : h("span", {}),
      next,
    );
  }

  function nextButton(label = "Next ›", testid = "restore-next"): HTMLButtonElement {
    return h("button", { type: "button", class: "btn btn-primary", "data-testid": testid }, label);
  }

  function draw(): void {
    if (!section.isConnected) return;
    drawStepper();
    switch (wizard.step) {
      case 1:
        return void stepServer();
      case 2:
        return void stepBackup();
      case 3:
        return stepTarget();
      case 4:
        return void stepConfirm();
      case 5:
      case 6:
        return stepRun();
    }
  }

  // ---- 1: server ----
  async function stepServer(): Promise<void> {
    page("Which server's backup?", h("p", { class: "muted" }, h("span", { class: "spinner" }), " Loading servers…"));
    let servers: ServerSummary[];
    let backups: BackupSummary[];
    try {
      [servers, backups] = await Promise.all([call("server_list"), call("backup_list", {})]);
    } catch (err) {
      page("Which server's backup?", errorBox(err, "restore-error"));
      return;
    }
    if (wizard.step !== 1 || !section.isConnected) return;
    if (servers.length === 0) {
      page(
        "Which server's backup?",
        h("p", { class: "empty", "data-testid": "restore-no-servers" }, "No server is registered. Register one in the ", h("a", { href: "#/servers" }, "Servers"), " panel and back it up first."),
      );
      return;
    }
    const completed = (name: string): BackupSummary[] => backups.filter((b) => b.server === name && b.status === "completed");
    if (!servers.some((s) => s.name === wizard.server)) {
      wizard.server = servers.find((s) => completed(s.name).length > 0)?.name ?? null;
    }
    const next = nextButton();
    next.disabled = wizard.server === null;
    next.addEventListener("click", () => {
      if (wizard.server === null) return;
      if (wizard.backup && wizard.backup.server !== wizard.server) wizard.backup = null;
      go(2);
    });
    const choices = servers.map((s) => {
      const own = completed(s.name);
      const newest = own.reduce<BackupSummary | null>((a, b) => (a && (a.started_at ?? "") >= (b.started_at ?? "") ? a : b), null);
      const radio = h("input", {
        type: "radio",
        name: "restore-server",
        value: s.name,
        "data-testid": "restore-server-radio",
        checked: s.name === wizard.server,
        disabled: own.length === 0,
      });
      radio.addEventListener("change", () => {
        wizard.server = s.name;
        next.disabled = false;
      });
      return h(
        "label",
        { class: own.length === 0 ? "choice disabled" : "choice", "data-testid": "restore-server-option", "data-server": s.name },
        radio,
        h(
          "span",
          { class: "choice-body" },
          h("strong", {}, s.name),
          h("span", { class: "mono muted small" }, s.dsn),
          h(
            "span",
            { class: "small" },
            own.length === 0
              ? "no completed backup"
              : `${own.length} completed backup${own.length === 1 ? "" : "s"}, newest ${when(newest?.started_at)}`,
          ),
        ),
      );
    });
    page("Which server's backup?", h("div", { class: "choices" }, ...choices), nav(null, next));
  }

  // ---- 2: backup ----
  async function stepBackup(): Promise<void> {
    const server = wizard.server!;
    page(`Which backup of ${server}?`, h("p", { class: "muted" }, h("span", { class: "spinner" }), " Loading backups…"));
    let list: BackupSummary[];
    try {
      list = (await call("backup_list", { server })).filter((b) => b.status === "completed");
    } catch (err) {
      page(`Which backup of ${server}?`, errorBox(err, "restore-error"), nav(() => go(1), null));
      return;
    }
    if (wizard.step !== 2 || !section.isConnected) return;
    list.sort((a, b) => (b.started_at ?? "").localeCompare(a.started_at ?? ""));
    if (!list.some((b) => b.id === wizard.backup?.id)) wizard.backup = list[0] ?? null;
    const next = nextButton();
    next.disabled = wizard.backup === null;
    next.addEventListener("click", () => {
      if (wizard.backup) go(3);
    });
    if (list.length === 0) {
      page(
        `Which backup of ${server}?`,
        h("p", { class: "empty", "data-testid": "restore-no-backups" }, `${server} has no completed backup. Take one in the `, h("a", { href: "#/backups" }, "Backups"), " panel."),
        nav(() => go(1), null),
      );
      return;
    }
    const rows = list.map((b) => {
      const radio = h("input", { type: "radio", name: "restore-backup", value: b.id, "data-testid": "restore-backup-radio", checked: b.id === wizard.backup?.id });
      radio.addEventListener("change", () => {
        wizard.backup = b;
        next.disabled = false;
      });
      const tr = h(
        "tr",
        { class: "choice-row", "data-testid": "restore-backup-option", "data-id": b.id, "data-verified": String(b.verified) },
        h("td", {}, radio),
        h("td", { class: "nowrap" }, when(b.started_at), h("div", { class: "mono resource-id", title: b.id }, b.name)),
        h("td", { class: "nowrap" }, bytes(b.source_size_bytes)),
        h("td", { class: "nowrap" }, bytes(b.stored_size_bytes), h("span", { class: "muted" }, ` (${ratio(b.compression_ratio)})`)),
        h("td", {}, flag(b.encrypted)),
        h("td", {}, flag(b.verified, "restore-backup-verified"), b.verified_at ? h("div", { class: "muted small" }, b.verified ? when(b.verified_at) : `failed ${when(b.verified_at)}`) : null),
        h("td", { class: "nowrap" }, b.server_version_num !== null ? formatVersionNum(b.server_version_num) : "—"),
      );
      // The whole row picks the backup.
      tr.addEventListener("click", (event) => {
        if (event.target !== radio) {
          radio.checked = true;
          radio.dispatchEvent(new Event("change"));
        }
      });
      return tr;
    });
    page(
      `Which backup of ${server}?`,
      h(
        "table",
        { class: "table choice-table", "data-testid": "restore-backups" },
        h("thead", {}, h("tr", {}, ...["", "Taken", "Size", "Stored", "Encrypted", "Verified", "PostgreSQL"].map((t) => h("th", {}, t)))),
        h("tbody", {}, ...rows),
      ),
      h("p", { class: "form-help" }, "Prefer a verified backup: verification read every object back and checked it against its checksum and the server's manifest."),
      nav(() => go(1), next),
    );
  }

  // ---- 3: target folder ----
  function stepTarget(): void {
    const target = h("input", {
      id: "restore-target",
      "data-testid": "restore-target",
      type: "text",
      placeholder: "/var/lib/postgresql/restored",
      autocomplete: "off",
      spellcheck: "false",
      value: wizard.target,
    });
    const browse = h("button", { type: "button", class: "btn", "data-testid": "restore-browse" }, "Choose…");
    const start = h("input", { id: "restore-start-server", "data-testid": "restore-start-server", type: "checkbox", checked: wizard.start });
    const port = h("input", {
      id: "restore-port",
      "data-testid": "restore-port",
      type: "number",
      min: 1,
      max: 65535,
      placeholder: "a free port",
      value: wizard.port,
      disabled: !wizard.start,
    });
    const feedback = h("div", { class: "form-feedback", "data-testid": "restore-target-feedback" });
    start.addEventListener("change", () => {
      port.disabled = !start.checked;
    });
    browse.addEventListener("click", async () => {
      replace(feedback);
      try {
        const chosen = await chooseFolder("Folder to restore into (empty or new)", target.value.trim() || undefined);
        if (chosen !== null) target.value = chosen;
      } catch (err) {
        replace(feedback, errorBox(err, "restore-browse-error"));
      }
    });
    const keep = (): void => {
      wizard.target = target.value.trim();
      wizard.start = start.checked;
      wizard.port = port.value.trim();
    };
    const next = nextButton();
    next.addEventListener("click", () => {
      keep();
      try {
        validateTarget();
      } catch (err) {
        replace(feedback, errorBox(err, "restore-target-error"));
        return;
      }
      go(4);
    });
    const b = wizard.backup!;
    page(
      "Where to restore it?",
      h(
        "div",
        { class: "form-grid" },
        h("label", { for: "restore-target" }, "Target folder"),
        h("div", { class: "path-field" }, target, browse),
        h("span", {}),
        h(
          "div",
          { class: "form-help" },
          "An empty folder, or one that does not exist yet (it is created). It becomes the restored server's data directory; nothing already in a folder is ever overwritten.",
        ),
        h("span", {}),
        h("label", { class: "checkbox", for: "restore-start-server" }, start, " Start the server afterwards"),
        h("label", { for: "restore-port" }, "Port"),
        h("div", { class: "inline-field" }, port, h("span", { class: "muted" }, `empty: a free port · needs PostgreSQL ${b.server_version_num !== null ? major(b.server_version_num) : "?"} binaries`)),
      ),
      feedback,
      nav(() => {
        keep();
        go(2);
      }, next),
    );
  }

  function validateTarget(): void {
    if (wizard.target === "") {
      throw new CoreError({ code: "invalid_input", message: "no target folder", hint: "type a folder's full path or choose one with “Choose…”" });
    }
    if (!isAbsolute(wizard.target)) {
      throw new CoreError({
        code: "invalid_input",
        message: `\`${wizard.target}\` is not a full path`,
        hint: "write the path from the root, such as /var/lib/postgresql/restored",
      });
    }
    if (wizard.start && wizard.port !== "") {
      const n = Number(wizard.port);
      if (!Number.isInteger(n) || n < 1 || n > 65535) {
        throw new CoreError({ code: "invalid_input", message: `port \`${wizard.port}\` is not a TCP port`, hint: "write a number from 1 to 65535, or leave it empty for a free port" });
      }
    }
  }

  // ---- 4: confirm ----
  async function stepConfirm(): Promise<void> {
    const b = wizard.backup!;
    const startButton = nextButton("Restore now", "restore-run");
    startButton.addEventListener("click", () => void startRestore(startButton));
    const tablespaces = h("li", { "data-testid": "restore-confirm-tablespaces", hidden: true });
    const version = b.server_version_num !== null ? `PostgreSQL ${major(b.server_version_num)}` : "the backup's PostgreSQL major version";
    const port = wizard.port !== "" ? `port ${wizard.port}` : "a free port";
    page(
      "Check and confirm",
      h("p", {}, "This is exactly what will happen:"),
      h(
        "dl",
        { class: "facts facts-wide confirm-facts", "data-testid": "restore-confirm" },
        h("dt", {}, "Backup"),
        h("dd", { class: "mono", "data-testid": "restore-confirm-backup-id" }, b.id),
        h("dt", {}, "Of"),
        h("dd", { "data-testid": "restore-confirm-server" }, `${b.server ?? "?"}, taken ${when(b.started_at)} (${b.name})`),
        h("dt", {}, "Size"),
        h(
          "dd",
          { "data-testid": "restore-confirm-size" },
          `${bytes(b.source_size_bytes)} to write (${bytes(b.stored_size_bytes)} to read from ${b.storage ?? "the storage target"}${b.encrypted ? ", encrypted" : ""})`,
        ),
        h("dt", {}, "Target folder"),
        h("dd", { "data-testid": "restore-confirm-target" }, h("span", { class: "mono wrap" }, wizard.target), h("div", { class: "confirm-note" }, "must be empty or not exist yet — the restore stops without writing anything otherwise")),
        h("dt", {}, "Server version"),
        h(
          "dd",
          { "data-testid": "restore-confirm-version" },
          `${version} binaries needed`,
          b.server_version_num !== null ? h("span", { class: "muted" }, ` (the backup is of ${formatVersionNum(b.server_version_num)})`) : null,
        ),
        h("dt", {}, "Afterwards"),
        h(
          "dd",
          { "data-testid": "restore-confirm-start" },
          wizard.start
            ? `the restored server is started on ${port}, listening on 127.0.0.1 only, with WAL archiving off`
            : "the server is not started (the result shows the command that starts it safely)",
        ),
        // Point-in-time recovery (release 0.5, its own issue): a "Recover to" step between
        // 3 and 4 will choose a time, LSN or named restore point from archived WAL, add it to
        // the restore request, and state it here. Until then every restore ends at the
        // backup's end.
        h("dt", {}, "Recovers to"),
        h("dd", { "data-testid": "restore-confirm-target-point" }, `the end of the backup (LSN ${b.stop_lsn ?? "?"})`, h("span", { class: "muted" }, " · point in time: release 0.5")),
      ),
      h(
        "ol",
        { class: "confirm-steps" },
        h("li", {}, `Each object is read from ${b.destination ?? "the storage target"}, ${b.encrypted ? "decrypted, " : ""}checked against its checksum and the signed catalogue, and unpacked.`),
        tablespaces,
        h(
          "li",
          {},
          b.verified
            ? `The backup was verified ${when(b.verified_at)}.`
            : b.verified_at
              ? h("span", { class: "bad-text" }, `Its last verification (${when(b.verified_at)}) found damage: the restore stops at the first damaged object.`)
              : h("span", { class: "warn-text" }, "This backup has not been verified yet; a damaged object stops the restore."),
        ),
      ),
      nav(() => go(3), startButton),
    );
    // Tablespaces: the core restores each into `<target>_tablespaces/<oid>` (beside the data
    // directory, not inside it), and the result lists those folders.
    try {
      const d: BackupDetail = await call("backup_show", { id: b.id });
      const extra = d.archives.filter((a) => a.tablespace_oid !== null);
      if (extra.length > 0 && tablespaces.isConnected) {
        tablespaces.hidden = false;
        replace(
          tablespaces,
          `Besides the data directory, ${extra.length} tablespace${extra.length === 1 ? " is" : "s are"} restored (from ${extra.map((a) => a.location ?? a.name).join(", ")}) into ${wizard.target}_tablespaces, which must also be empty or not exist yet; the restored data directory points at them.`,
        );
      }
    } catch {
      // The confirmation stands without it; the restore itself reports any problem.
    }
  }

  async function startRestore(button: HTMLButtonElement): Promise<void> {
    const b = wizard.backup!;
    const request: BackupRestoreRequest = { id: b.id, target_dir: wizard.target, start: wizard.start };
    if (wizard.start && wizard.port !== "") request.port = Number(wizard.port);
    button.disabled = true;
    try {
      const { id } = await call("backup_restore_start", request);
      wizard.watch = new JobWatch(id, isRestoreSummary, "the restore");
      wizard.request = request;
      go(5);
    } catch (err) {
      button.disabled = false;
      const box = errorBox(err, "restore-error");
      body.querySelector(".wizard-nav")?.before(box);
    }
  }

  // ---- 5 and 6: progress, then the result ----
  function stepRun(): void {
    const watch = wizard.watch;
    if (!watch) return go(4);
    watch.subscribe(() => {
      if (!section.isConnected) {
        watch.subscribe(null);
        return;
      }
      if (watch.finished && watch.result && wizard.step === 5) wizard.step = 6;
      drawStepper();
      drawRun(watch);
    });
    if (watch.finished && watch.result) wizard.step = 6;
    drawStepper();
    drawRun(watch);
  }

  function drawRun(watch: JobWatch<RestoreSummary>): void {
    const b = wizard.backup!;
    if (!watch.finished) {
      const view = progressView(watch.status, "the backup");
      page(
        "Restoring…",
        h(
          "div",
          { class: "verify-running", "data-testid": "restore-running" },
          h("div", { class: "verify-label" }, h("span", { class: "spinner" }), ` Restoring ${b.name} into `, h("span", { class: "mono" }, wizard.target), ": ", h("span", { "data-testid": "restore-progress-label" }, view.label)),
          progressBar(view, "restore-progress"),
        ),
        h("p", { class: "muted" }, "You may leave this panel; the restore goes on and this page shows it again when you come back."),
      );
      return;
    }
    if (!watch.result) {
      // The core keeps a complete restore whose server did not start (a port in use, missing
      // binaries) and says so in its message: the folder is not to be changed then.
      const message = (watch.error as { message?: string } | null)?.message ?? "";
      const restoredNotStarted = message.includes("but the server did not start");
      page(
        restoredNotStarted ? "Restored, but the server did not start" : "The restore failed",
        errorBox(watch.error, "restore-error"),
        h(
          "div",
          { class: "wizard-nav" },
          restoredNotStarted
            ? null
            : h("button", { type: "button", class: "btn", "data-testid": "restore-retry", onclick: retry }, "‹ Change the target folder"),
          h("button", { type: "button", class: "btn", "data-testid": "restore-again", onclick: startOver }, "Start over"),
        ),
      );
      return;
    }
    const r = watch.result;
    const ok = r.status === "completed";
    page(
      ok ? "Restore completed" : `Restore ${r.status}`,
      h(
        "div",
        { class: ok ? "verify-intact restore-result" : "verify-alarm restore-result", "data-testid": "restore-result", "data-status": r.status, "data-restore-id": r.id },
        h(
          "div",
          { class: "verify-headline" },
          h("span", { class: "verify-icon" }, ok ? "✓" : "!"),
          ok ? `Restored in ${duration(r.duration_seconds)}` : `Restore ${r.status}`,
        ),
        r.failure_reason ? h("p", { class: "bad-text" }, r.failure_reason) : null,
        h(
          "dl",
          { class: "facts facts-wide" },
          h("dt", {}, "Duration"),
          h("dd", { "data-testid": "restore-result-duration", "data-seconds": r.duration_seconds ?? "" }, duration(r.duration_seconds), h("span", { class: "muted" }, ` (measured, ${when(r.started_at)} → ${when(r.completed_at)})`)),
          h("dt", {}, "Restored"),
          h("dd", { "data-testid": "restore-result-bytes" }, bytes(r.bytes_restored), r.duration_seconds ? h("span", { class: "muted" }, ` · ${bytes(r.bytes_restored / r.duration_seconds)}/s`) : null),
          h("dt", {}, "Data directory"),
          h("dd", { class: "mono wrap", "data-testid": "restore-result-target" }, r.target_dir ?? wizard.target),
          ...(r.tablespace_dirs.length > 0
            ? [h("dt", {}, "Tablespaces"), h("dd", { class: "mono wrap", "data-testid": "restore-result-tablespaces" }, ...r.tablespace_dirs.map((d) => h("div", {}, d)))]
            : []),
          h("dt", {}, "Server"),
          r.started_port !== null
            ? h(
                "dd",
                { "data-testid": "restore-result-port", "data-port": r.started_port },
                `running on port ${r.started_port}`,
                h("div", { class: "mono muted" }, `psql -h 127.0.0.1 -p ${r.started_port}`),
              )
            : h(
                "dd",
                { "data-testid": "restore-result-not-started" },
                "not started; as the PostgreSQL account:",
                h("div", { class: "mono muted wrap" }, startCommand(r.target_dir ?? wizard.target)),
                h("div", { class: "muted small" }, "archive_mode=off: the copy has the original's archive_command and must never archive into the original's archive."),
              ),
          h("dt", {}, "From backup"),
          h("dd", { class: "mono" }, `${b.id} (${b.server ?? "?"}, ${when(b.started_at)})`),
        ),
      ),
      h(
        "div",
        { class: "wizard-nav" },
        h("a", { href: "#/backups", class: "btn" }, "Backups"),
        h("button", { type: "button", class: "btn btn-primary", "data-testid": "restore-again", onclick: startOver }, "Restore another"),
      ),
    );
  }

  function retry(): void {
    wizard.watch?.subscribe(null);
    wizard.watch = null;
    go(3);
  }

  function startOver(): void {
    wizard.watch?.subscribe(null);
    const keep = wizard.server;
    wizard = fresh();
    wizard.server = keep;
    draw();
  }

  draw();
}
