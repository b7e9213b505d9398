// How the UI shows a core error: one title per error code (the only place the UI branches on
// codes), then the core's message (what failed) and hint (what to do).

import { h } from "./dom";
import type { ErrorCode } from "./generated/ErrorCode";
import { type CoreError, toCoreError } from "./ipc";

const TITLES: Record<ErrorCode, string> = {
  invalid_input: "Invalid input",
  not_found: "Not found",
  already_exists: "Already exists",
  unreachable: "Cannot connect",
  authentication_failed: "Authentication failed",
  permission_denied: "Permission denied",
  unsupported_version: "Unsupported PostgreSQL version",
  port_in_use: "Port already in use",
  data_dir_unusable: "Data directory unusable",
  keyring_unavailable: "No keyring available",
  binaries_missing: "PostgreSQL binaries missing",
  verification_failed: "Verification failed",
  unauthorized: "Unauthorized",
  internal: "Unexpected error",
};

export function errorTitle(code: ErrorCode): string {
  return TITLES[code] ?? "Error";
}

/** A block showing what failed and what to do; `testid` names it for the end-to-end test. */
export function errorBox(err: unknown, testid: string): HTMLElement {
  const e: CoreError = toCoreError(err);
  return h(
    "div",
    { class: "error-box", role: "alert", "data-testid": testid, "data-code": e.code },
    h("div", { class: "error-title" }, errorTitle(e.code)),
    h("div", { class: "error-message", "data-testid": `${testid}-message` }, e.message),
    e.hint ? h("div", { class: "error-hint", "data-testid": `${testid}-hint` }, h("strong", {}, "What to do: "), e.hint) : null,
  );
}
