// "Details" of a backup row (`backup_show`): where it is, what it holds (archives per
// tablespace), the WAL it needs, which keys encrypted and signed it, and every restore made
// from it.

import { h, replace } from "../dom";
import { errorBox } from "../errors";
import type { BackupDetail } from "../generated/BackupDetail";
import type { RestoreSummary } from "../generated/RestoreSummary";
import { call } from "../ipc";
import { formatVersionNum } from "./servers";
import { bytes, compression, duration, ratio, when } from "./backups-common";

function fact(label: string, value: string | HTMLElement | null | undefined, testid: string, mono = false): HTMLElement[] {
  return [
    h("dt", {}, label),
    h(
      "dd",
      { class: mono ? "mono wrap" : "wrap", "data-testid": `backup-detail-${testid}` },
      value === null || value === undefined || value === "" ? h("span", { class: "muted" }, "—") : value,
    ),
  ];
}

function restoresTable(restores: RestoreSummary[]): HTMLElement {
  if (restores.length === 0) {
    return h("p", { class: "muted", "data-testid": "backup-detail-no-restores" }, "Never restored.");
  }
  return h(
    "table",
    { class: "table compact", "data-testid": "backup-detail-restores" },
    h("thead", {}, h("tr", {}, ...["Started", "Status", "Target folder", "Restored", "Duration", "Port"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      ...restores.map((r) =>
        h(
          "tr",
          { "data-testid": "backup-detail-restore", "data-status": r.status },
          h("td", { class: "nowrap" }, when(r.started_at)),
          h("td", { title: r.failure_reason ?? undefined }, r.status, r.failure_reason ? h("div", { class: "bad-text small" }, r.failure_reason) : null),
          h("td", { class: "mono wrap" }, r.target_dir ?? "—", ...r.tablespace_dirs.map((d) => h("div", { class: "muted" }, d))),
          h("td", { class: "nowrap" }, bytes(r.bytes_restored)),
          h("td", { class: "nowrap" }, duration(r.duration_seconds)),
          h("td", {}, r.started_port !== null ? String(r.started_port) : "—"),
        ),
      ),
    ),
  );
}

function render(d: BackupDetail): HTMLElement {
  const b = d.backup;
  const wal = d.wal_start_segment ? `${d.wal_start_segment} … ${d.wal_stop_segment ?? "?"}` : null;
  return h(
    "div",
    { class: "backup-detail", "data-testid": "backup-detail", "data-loaded": "true", "data-id": b.id },
    h(
      "dl",
      { class: "facts" },
      ...fact("Backup id", b.id, "id", true),
      ...fact("Name", b.name, "name", true),
      ...fact("Destination", b.destination, "destination", true),
      ...fact("Compression", b.compression ? `${compression(b)} (${ratio(b.compression_ratio)})` : null, "compression"),
      ...fact("Start LSN", b.start_lsn, "start-lsn", true),
      ...fact("Stop LSN", b.stop_lsn, "stop-lsn", true),
      ...fact("WAL needed", wal, "wal", true),
      ...fact("Timeline", b.timeline !== null ? String(b.timeline) : null, "timeline"),
      ...fact("PostgreSQL", b.server_version_num !== null ? formatVersionNum(b.server_version_num) : null, "version"),
      ...fact("System id", b.system_identifier, "system-id", true),
      ...fact("Encryption key", b.encrypted ? d.key_fingerprint ?? "?" : "not encrypted", "key", b.encrypted),
      ...fact("Signed by", d.signed_by, "signer", true),
      ...fact("Catalogue SHA-256", b.checksum, "checksum", true),
      ...fact("Kept for", `${b.retention_days} days`, "retention"),
      // `verified_at` is the last verification's time, whatever it found.
      ...fact("Verified", b.verified ? when(b.verified_at) : b.verified_at ? `failed ${when(b.verified_at)}` : "not yet", "verified"),
      ...fact("Restore test", b.rto_seconds !== null ? `restored in ${duration(b.rto_seconds)}` : "none", "rto"),
    ),
    b.failure_reason ? h("p", { class: "bad-text", "data-testid": "backup-detail-failure" }, b.failure_reason) : null,
    h("h3", {}, `Archives (${d.archives.length})`),
    h(
      "table",
      { class: "table compact", "data-testid": "backup-detail-archives" },
      h("thead", {}, h("tr", {}, ...["Archive", "Tablespace", "Size", "Stored", "Objects"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        ...d.archives.map((a) =>
          h(
            "tr",
            { "data-testid": "backup-detail-archive" },
            h("td", { class: "mono" }, a.name),
            h("td", { class: "mono wrap" }, a.tablespace_oid === null ? "pg_default (data directory)" : `${a.tablespace_oid}${a.location ? ` · ${a.location}` : ""}`),
            h("td", { class: "nowrap" }, bytes(a.raw_bytes)),
            h("td", { class: "nowrap" }, bytes(a.stored_bytes)),
            h("td", {}, a.objects.toLocaleString()),
          ),
        ),
      ),
    ),
    h("h3", {}, "Restores"),
    restoresTable(d.restores),
  );
}

/** Fill `area` with the detail of backup `id`. */
export async function loadDetail(area: HTMLElement, id: string): Promise<void> {
  replace(area, h("p", { class: "muted", "data-testid": "backup-detail-loading" }, h("span", { class: "spinner" }), " Reading the catalogue…"));
  try {
    const d = await call("backup_show", { id });
    replace(area, render(d));
  } catch (err) {
    replace(area, errorBox(err, "backup-detail-error"));
  }
}
