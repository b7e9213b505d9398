// What the Backups and Restore panels share: sizes, durations and rates as people read them,
// and the watch over a core job (backup, verification, restore) that outlives the panel.
//
// A job runs in the core whatever the window shows. Its watch is kept at module level and polls
// `job_status` until the job ends, so leaving a panel and coming back shows the same job where
// it has got to; the panel on screen subscribes to it and redraws on each change.

import { h } from "../dom";
import type { BackupSummary } from "../generated/BackupSummary";
import type { JobStatus } from "../generated/JobStatus";
import { CoreError, call } from "../ipc";

/** Poll interval while someone looks at the job, and while nobody does. */
const POLL_MS = 250;
const POLL_HIDDEN_MS = 1_000;

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** `1536` → `1.5 KiB`; `null` → `—`. */
export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

/** `0.42` → `0.42 s`, `75` → `1 min 15 s`, `3725` → `1 h 2 min`; `null` → `—`. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** `3.214` → `3.2×`. */
export function ratio(r: number | null | undefined): string {
  return r === null || r === undefined ? "—" : `${r.toFixed(r < 10 ? 1 : 0)}×`;
}

/** `zstd:1 by the server`, `zstd:1 by pgAnalytics`, `none`; `?` when unknown. */
export function compression(b: BackupSummary): string {
  const by = b.compressed_on === "server" ? " by the server" : b.compressed_on === "client" ? " by pgAnalytics" : "";
  return `${b.compression ?? "?"}${by}`;
}

/** Local date and time of an RFC 3339 timestamp; `null` → `—`. */
export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "—";
}

/** The same, short (for table cells; the full form goes in a title). */
export function whenShort(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" }) : "—";
}

/** A yes/no pill (the Servers panel's style). */
export function flag(value: boolean, testid?: string, title?: string): HTMLElement {
  return h(
    "span",
    { class: value ? "flag flag-yes" : "flag flag-no", "data-testid": testid, "data-value": String(value), title },
    value ? "yes" : "no",
  );
}

const STATUS_LABELS: Record<BackupSummary["status"], string> = {
  running: "running",
  completed: "completed",
  failed: "✕ failed",
  deleted: "pruned",
};

export function statusBadge(b: BackupSummary): HTMLElement {
  return h(
    "span",
    {
      class: `backup-status backup-status-${b.status}`,
      "data-testid": "backup-row-status",
      "data-status": b.status,
      title: b.failure_reason ?? undefined,
    },
    b.status === "running" ? h("span", { class: "spinner" }) : null,
    b.status === "running" ? " " : null,
    STATUS_LABELS[b.status],
  );
}

/** `8f0c…` style short form of a UUID (the full one goes in a title). */
export function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

/** Server name, or that the server has been removed since. */
export function serverName(b: BackupSummary): string {
  return b.server ?? "(server removed)";
}

/** The job's progress as words, a bar value and a rate: `done` of `total` bytes (`total` 0 = unknown). */
export interface ProgressView {
  label: string;
  /** 0–1, or null when there is no estimate. */
  fraction: number | null;
}

/** Bytes per second since the job started. */
export function rate(job: JobStatus): number | null {
  const elapsed = (Date.now() - Date.parse(job.started_at)) / 1000;
  if (!(elapsed > 0.2) || job.done <= 0) return null;
  return job.done / elapsed;
}

/**
 * `1.2 GiB of ≈ 3.4 GiB (35 %) · 180 MiB/s`. `estimateWord` says what the total is (the
 * server's estimate for a backup, the backup's size for a verification or restore).
 */
export function progressView(job: JobStatus | null, estimateWord: string): ProgressView {
  if (!job || (job.done === 0 && job.total === 0)) return { label: "Starting…", fraction: null };
  const r = rate(job);
  const speed = r !== null ? ` · ${bytes(r)}/s` : "";
  if (job.total > 0) {
    const fraction = Math.min(job.done / job.total, 1);
    return {
      label: `${bytes(job.done)} of ${bytes(job.total)} (${Math.floor(fraction * 100)} % of ${estimateWord})${speed}`,
      fraction,
    };
  }
  return { label: `${bytes(job.done)}${speed}`, fraction: null };
}

/** A progress bar: determinate when there is an estimate. */
export function progressBar(view: ProgressView, testid: string): HTMLProgressElement {
  const bar = h("progress", { class: "job-progress", "data-testid": testid });
  if (view.fraction !== null) {
    bar.max = 1000;
    bar.value = Math.round(view.fraction * 1000);
  }
  return bar;
}

/**
 * Watches one core job until it ends. `check` tells whether a finished job's `result` is of
 * the expected shape (the job's `kind` says which command started it).
 */
export class JobWatch<T> {
  status: JobStatus | null = null;
  result: T | null = null;
  error: unknown = null;
  finished = false;
  private listener: (() => void) | null = null;

  constructor(
    readonly id: string,
    private readonly check: (value: unknown) => value is T,
    readonly label: string,
  ) {
    void this.loop();
  }

  /** The function that redraws what shows the job (replaces the previous one). */
  subscribe(listener: (() => void) | null): void {
    this.listener = listener;
  }

  private notify(): void {
    try {
      this.listener?.();
    } catch (err) {
      console.error(err);
    }
  }

  private async loop(): Promise<void> {
    try {
      let job = await call("job_status", { id: this.id });
      while (job.state === "running") {
        this.status = job;
        this.notify();
        await new Promise((resolve) => window.setTimeout(resolve, this.listener ? POLL_MS : POLL_HIDDEN_MS));
        job = await call("job_status", { id: this.id });
      }
      this.status = job;
      if (job.state === "failed") {
        throw new CoreError(job.error ?? { code: "internal", message: `${this.label} failed without an error` });
      }
      if (!this.check(job.result)) {
        throw new CoreError({ code: "internal", message: `${this.label} finished without a result` });
      }
      this.result = job.result;
    } catch (err) {
      this.error = err;
    }
    this.finished = true;
    this.notify();
  }
}

function hasFields(value: unknown, fields: Record<string, string>): boolean {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return Object.entries(fields).every(([k, type]) => typeof v[k] === type);
}

export function isBackupSummary(value: unknown): value is BackupSummary {
  return hasFields(value, { id: "string", status: "string", encrypted: "boolean" });
}
