// "Verify now" of the Audit log panel: starts verification as a job (`audit_verify_start`),
// polls `job_status` for progress, then shows the result: intact, with the signed checkpoint it
// was checked against, or an alarm naming the first bad event and what is wrong with it.

import { h, replace } from "../dom";
import { errorBox } from "../errors";
import type { AuditProblem } from "../generated/AuditProblem";
import type { AuditVerification } from "../generated/AuditVerification";
import type { JobStatus } from "../generated/JobStatus";
import { CoreError, call } from "../ipc";
import { eventCount, localTime, shortHash } from "./audit-detail";

const POLL_MS = 200;

const PROBLEMS: Record<AuditProblem, { title: string; meaning: string }> = {
  content_changed: {
    title: "Content changed",
    meaning: "The event no longer matches its recorded hash: one of its fields was changed after it was written.",
  },
  event_missing: {
    title: "Event missing",
    meaning: "An event is gone from the chain: it was deleted after it was written.",
  },
  event_inserted: {
    title: "Event inserted",
    meaning: "An event that was never part of the signed log was inserted into it.",
  },
  order_changed: {
    title: "Order changed",
    meaning: "Events were swapped or moved: the chain no longer links them in the order they were written.",
  },
  tail_missing: {
    title: "Tail missing",
    meaning: "Events covered by a signed checkpoint are gone from the end of the log: it was truncated.",
  },
  signature_invalid: {
    title: "Signature invalid",
    meaning: "A checkpoint's signature does not verify with the public key: the checkpoint was forged or replaced (or the key is not the one that signed it).",
  },
  checkpoints_missing: {
    title: "Checkpoints missing",
    meaning: "The database records signed checkpoints that the checkpoint folder lacks: the folder is incomplete, or not this log's, so a rewritten log could hide behind it.",
  },
};

export interface VerifyHooks {
  /** Open the detail of an event (the first bad one), with what verification found. */
  openEvent(id: number, flag: string): void;
  /** Verification ended (it records itself in the log: the table and status are stale). */
  finished(): void;
}

function count(n: number): string {
  return n.toLocaleString();
}

function isVerification(value: unknown): value is AuditVerification {
  return typeof value === "object" && value !== null && typeof (value as { intact?: unknown }).intact === "boolean";
}

/** The "Verify now" button and the area showing progress and the result. */
export function verifier(hooks: VerifyHooks): { button: HTMLButtonElement; area: HTMLElement } {
  const button = h("button", { class: "btn btn-primary", "data-testid": "audit-verify" }, "Verify now");
  const area = h("div", { "data-testid": "audit-verify-area", "aria-live": "polite" });

  function progress(job: JobStatus | null): void {
    const bar = h("progress", { class: "verify-progress", "data-testid": "audit-verify-progress" });
    let label = "Starting verification…";
    if (job && job.total > 0) {
      bar.max = job.total;
      bar.value = Math.min(job.done, job.total);
      label = `Checking events: ${count(job.done)} of ${count(job.total)} (${Math.floor((100 * job.done) / job.total)} %)`;
    } else if (job) {
      label = "Reading the checkpoints…";
    }
    replace(
      area,
      h(
        "div",
        { class: "card verify-running", "data-testid": "audit-verify-running" },
        h("div", { class: "verify-label" }, h("span", { class: "spinner" }), " ", label),
        bar,
      ),
    );
  }

  function checkpointFacts(r: AuditVerification): HTMLElement {
    const c = r.checkpoint;
    if (!c) {
      return h(
        "p",
        { class: "muted", "data-testid": "audit-verify-checkpoint" },
        "No signed checkpoint: only the hash chain was checked.",
      );
    }
    return h(
      "dl",
      { class: "facts", "data-testid": "audit-verify-checkpoint" },
      h("dt", {}, "Checked against"),
      h("dd", { "data-testid": "audit-verify-checkpoint-size" }, `${c.kind} of ${eventCount(c.tree_size)}`),
      h("dt", {}, "Signed"),
      h("dd", { "data-testid": "audit-verify-checkpoint-signed", title: c.signed_at }, localTime(c.signed_at)),
      h("dt", {}, "Root hash"),
      h("dd", { class: "mono", title: c.root_hash, "data-testid": "audit-verify-checkpoint-root" }, shortHash(c.root_hash)),
      h("dt", {}, "Key"),
      h(
        "dd",
        { class: "mono", title: c.key_fingerprint, "data-testid": "audit-verify-checkpoint-key" },
        `${c.algorithm} ${shortHash(c.key_fingerprint)}`,
      ),
    );
  }

  function warnings(r: AuditVerification): HTMLElement | null {
    if (r.warnings.length === 0) return null;
    return h(
      "ul",
      { class: "verify-warnings", "data-testid": "audit-verify-warnings" },
      ...r.warnings.map((w) => h("li", { "data-testid": "audit-verify-warning" }, w)),
    );
  }

  function range(r: AuditVerification): string {
    return r.events_checked > 0 ? ` (#${r.checked_from} to #${r.checked_to})` : "";
  }

  function intact(r: AuditVerification): HTMLElement {
    // Without a signed checkpoint only the chain was checked: a rewritten or truncated log
    // would pass, so this is not the full green result.
    const signed = r.checkpoint !== null;
    return h(
      "div",
      {
        class: signed ? "card verify-intact" : "card verify-intact verify-unsigned",
        "data-testid": "audit-verify-result",
        "data-intact": "true",
        "data-signed": String(signed),
      },
      h(
        "div",
        { class: "verify-headline" },
        h("span", { class: "verify-icon" }, signed ? "✓" : "!"),
        signed ? "Audit log intact" : "Hash chain intact — no signed checkpoint to check it against",
      ),
      h(
        "p",
        { "data-testid": "audit-verify-summary" },
        `${eventCount(r.events_checked)} checked${range(r)} in ${r.seconds.toFixed(2)} s`,
        h("span", { class: "sep" }, " · "),
        `${count(Math.round(r.events_per_second))} events/s`,
      ),
      checkpointFacts(r),
      warnings(r),
    );
  }

  function alarm(r: AuditVerification): HTMLElement {
    const problem = r.problem ? PROBLEMS[r.problem] : null;
    const bad = r.first_bad_id;
    const openSlot = h("div", { class: "detail-actions" });
    const flag = `Verification found this event bad: ${problem ? problem.title.toLowerCase() : "failed"}${r.detail ? ` (${r.detail})` : ""}.`;
    const box = h(
      "div",
      {
        class: "card verify-alarm",
        role: "alert",
        "data-testid": "audit-verify-result",
        "data-intact": "false",
        "data-problem": r.problem ?? "",
        "data-first-bad-id": bad ?? "",
      },
      h(
        "div",
        { class: "verify-headline" },
        h("span", { class: "verify-icon" }, "!"),
        "Audit log tampered with",
        bad !== null ? ` — first bad event #${bad}` : "",
      ),
      h(
        "p",
        { class: "verify-problem", "data-testid": "audit-verify-problem" },
        h("strong", {}, problem ? `${problem.title}. ` : "Verification failed. "),
        problem ? problem.meaning : "",
      ),
      r.detail ? h("p", { class: "mono wrap", "data-testid": "audit-verify-detail" }, r.detail) : null,
      h(
        "p",
        { class: "muted" },
        `${eventCount(r.events_checked)} checked${range(r)}. Do not trust events from #${bad ?? r.checked_from} on until the cause is found; compare with the external checkpoints and your backups.`,
      ),
      openSlot,
      checkpointFacts(r),
      warnings(r),
    );
    // Offer the bad event's detail only when it exists (a missing event or tail has none).
    if (bad !== null) {
      void call("audit_show", { id: bad }).then(
        () =>
          replace(
            openSlot,
            h("button", { class: "btn btn-danger", "data-testid": "audit-verify-open-bad", onclick: () => hooks.openEvent(bad, flag) }, `Open event #${bad}`),
          ),
        () => replace(openSlot, h("span", { class: "muted", "data-testid": "audit-verify-bad-absent" }, `Event #${bad} is not in the log.`)),
      );
    }
    return box;
  }

  async function run(): Promise<void> {
    button.disabled = true;
    button.textContent = "Verifying…";
    progress(null);
    try {
      const { id } = await call("audit_verify_start", {});
      let job = await call("job_status", { id });
      while (job.state === "running") {
        if (!area.isConnected) return;
        progress(job);
        await new Promise((resolve) => window.setTimeout(resolve, POLL_MS));
        job = await call("job_status", { id });
      }
      if (job.state === "failed") {
        throw new CoreError(job.error ?? { code: "internal", message: "verification failed without an error" });
      }
      if (!isVerification(job.result)) {
        throw new CoreError({ code: "internal", message: "verification finished without a result" });
      }
      replace(area, job.result.intact ? intact(job.result) : alarm(job.result));
    } catch (err) {
      replace(area, errorBox(err, "audit-verify-error"));
    } finally {
      button.disabled = false;
      button.textContent = "Verify now";
      hooks.finished();
    }
  }

  button.addEventListener("click", () => void run());
  return { button, area };
}
