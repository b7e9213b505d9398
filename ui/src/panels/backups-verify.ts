// "Verify" of a backup row: starts `backup_verify_start`, shows progress from `job_status`,
// then the result: intact (every object read back, decrypted, checked against its checksum and
// the server's manifest), or a red alarm naming the first damaged object and what is wrong.

import { h, replace } from "../dom";
import { errorBox } from "../errors";
import type { BackupProblem } from "../generated/BackupProblem";
import type { BackupVerification } from "../generated/BackupVerification";
import { call } from "../ipc";
import { JobWatch, bytes, duration, progressBar, progressView } from "./backups-common";

/** What each problem the core reports means, for someone deciding what to do next. */
const PROBLEMS: Record<string, { title: string; meaning: string }> = {
  missing: {
    title: "Object missing",
    meaning: "An object the catalogue lists is gone from the storage target: it was deleted or moved.",
  },
  size_mismatch: {
    title: "Size differs",
    meaning: "The stored object is not as long as when it was written: it was truncated or replaced.",
  },
  checksum_mismatch: {
    title: "Checksum differs",
    meaning: "The stored bytes no longer match their recorded SHA-256: the object was changed or corrupted.",
  },
  authentication_failed: {
    title: "Decryption failed",
    meaning: "The encrypted object does not authenticate: it was changed, or the backup key is not the one it was made with.",
  },
  undecodable: {
    title: "Cannot be decoded",
    meaning: "The object could not be decompressed or read as an archive.",
  },
  manifest_mismatch: {
    title: "Differs from the server's manifest",
    meaning: "A file inside the backup does not match the checksum PostgreSQL recorded in backup_manifest.",
  },
  catalogue_signature_invalid: {
    title: "Catalogue signature invalid",
    meaning: "The backup's catalogue is not validly signed by this installation's key: it was forged or replaced.",
  },
  catalogue_changed: {
    title: "Catalogue changed",
    meaning: "The catalogue in storage no longer matches the one the repository recorded.",
  },
};

function problemInfo(p: BackupProblem): { title: string; meaning: string } {
  return PROBLEMS[p.problem] ?? { title: p.problem.replace(/_/g, " "), meaning: "" };
}

export function isVerification(value: unknown): value is BackupVerification {
  return typeof value === "object" && value !== null && typeof (value as { intact?: unknown }).intact === "boolean";
}

/** Running and finished verifications, by backup id (kept across visits of the panel). */
export const verifications = new Map<string, JobWatch<BackupVerification>>();

/** Start verifying `id`; `changed` redraws the area of that backup. */
export async function startVerify(id: string): Promise<JobWatch<BackupVerification>> {
  const { id: job } = await call("backup_verify_start", { id });
  const watch = new JobWatch(job, isVerification, "verification");
  verifications.set(id, watch);
  return watch;
}

function intact(r: BackupVerification): HTMLElement {
  return h(
    "div",
    { class: "verify-intact backup-verify-result", "data-testid": "backup-verify-result", "data-intact": "true" },
    h("div", { class: "verify-headline" }, h("span", { class: "verify-icon" }, "✓"), "Backup intact"),
    h(
      "p",
      { "data-testid": "backup-verify-summary" },
      `${r.objects_checked.toLocaleString()} objects (${bytes(r.bytes_checked)}) read back and checked`,
      r.manifest_files_checked > 0 ? `, ${r.manifest_files_checked.toLocaleString()} files against the server's manifest` : "",
      ` in ${duration(r.seconds)}`,
      r.restore_test_seconds !== null ? `; restore test ${duration(r.restore_test_seconds)}` : "",
      ".",
    ),
  );
}

function alarm(r: BackupVerification): HTMLElement {
  const first = r.problems[0] ?? null;
  const info = first ? problemInfo(first) : null;
  return h(
    "div",
    {
      class: "verify-alarm backup-verify-result",
      role: "alert",
      "data-testid": "backup-verify-result",
      "data-intact": "false",
      "data-problem": first?.problem ?? "",
      "data-object": first?.object ?? "",
    },
    h("div", { class: "verify-headline" }, h("span", { class: "verify-icon" }, "!"), "Backup damaged — do not restore from it"),
    first
      ? h(
          "p",
          { class: "damaged-object" },
          "First damaged object: ",
          h("span", { class: "mono wrap", "data-testid": "backup-verify-object" }, first.object),
        )
      : null,
    info
      ? h(
          "p",
          { class: "verify-problem", "data-testid": "backup-verify-problem" },
          h("strong", {}, `${info.title}. `),
          info.meaning,
        )
      : null,
    first?.detail ? h("p", { class: "mono wrap", "data-testid": "backup-verify-detail" }, first.detail) : null,
    r.problems.length > 1
      ? h(
          "details",
          { class: "settings" },
          h("summary", {}, `${r.problems.length - 1} more problem${r.problems.length === 2 ? "" : "s"}${r.problems.length >= 100 ? " (the first 100 are listed)" : ""}`),
          h(
            "ul",
            { class: "problem-list" },
            ...r.problems.slice(1).map((p) => h("li", {}, h("span", { class: "mono" }, p.object), ` — ${problemInfo(p).title}: ${p.detail}`)),
          ),
        )
      : null,
    h(
      "p",
      { class: "muted" },
      `${r.objects_checked.toLocaleString()} objects checked in ${duration(r.seconds)}. Take a new backup, and find out what changed the storage target.`,
    ),
  );
}

/** The verify area's content for `watch`; `dismiss` clears a finished result. */
export function verifyView(watch: JobWatch<BackupVerification>, dismiss: () => void): HTMLElement {
  const close = h("button", { class: "btn btn-small", "data-testid": "backup-verify-dismiss", onclick: dismiss }, "Dismiss");
  if (!watch.finished) {
    const view = progressView(watch.status, "the backup");
    return h(
      "div",
      { class: "verify-running", "data-testid": "backup-verify-running" },
      h("div", { class: "verify-label" }, h("span", { class: "spinner" }), " Verifying: ", view.label),
      progressBar(view, "backup-verify-progress"),
    );
  }
  const body = watch.result ? (watch.result.intact ? intact(watch.result) : alarm(watch.result)) : errorBox(watch.error, "backup-verify-error");
  return h("div", { class: "verify-done" }, body, h("div", { class: "verify-dismiss" }, close));
}

/** Draw `area` from `watch` now and on each change while `area` is on screen (the caller puts
 * it on screen before the watch's next poll). */
export function bindVerify(area: HTMLElement, watch: JobWatch<BackupVerification>, dismiss: () => void, finished: () => void): void {
  // Already showing this finished result: keep its elements when the table is redrawn around
  // it (the list reloads once a verification ends).
  if (watch.finished && area.dataset.finished === "true" && area.hasChildNodes()) return;
  const draw = (): void => {
    if (!area.isConnected) {
      watch.subscribe(null);
      return;
    }
    replace(area, verifyView(watch, dismiss));
    if (watch.finished && area.dataset.finished !== "true") {
      area.dataset.finished = "true";
      finished();
    }
  };
  // Finished before it was shown here: the table the area goes into is already fresh.
  if (watch.finished) area.dataset.finished = "true";
  if (!watch.finished) watch.subscribe(draw);
  replace(area, verifyView(watch, dismiss));
}
