// The only module that talks to the desktop shell (and the only one importing @tauri-apps/*).
// Every core command goes through the shell's single `rpc` command; request and response types
// come from the core (`generated/commands.ts`), so the UI cannot drift from the API.

import { invoke, isTauri } from "@tauri-apps/api/core";
import type { Commands } from "./generated/commands";
import type { Error as CoreErrorBody } from "./generated/Error";
import type { ErrorCode } from "./generated/ErrorCode";

export type CommandName = keyof Commands;
export type Request<K extends CommandName> = Commands[K]["request"];
export type Response<K extends CommandName> = Commands[K]["response"];

// Commands without arguments (request `Empty`) may be called without any.
type ArgsOf<K extends CommandName> =
  Record<string, never> extends Request<K> ? [args?: Request<K>] : [args: Request<K>];

/** A failed command: the core's error code, what failed, and what to do. */
export class CoreError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(body: CoreErrorBody) {
    super(body.message);
    this.name = "CoreError";
    this.code = body.code;
    this.hint = body.hint;
  }
}

function isCoreErrorBody(value: unknown): value is CoreErrorBody {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { code?: unknown }).code === "string" &&
    typeof (value as { message?: unknown }).message === "string"
  );
}

/** Any rejection as a CoreError (the shell itself rejects with plain strings). */
export function toCoreError(err: unknown): CoreError {
  if (err instanceof CoreError) return err;
  if (isCoreErrorBody(err)) return new CoreError(err);
  const message = err instanceof Error ? err.message : String(err);
  return new CoreError({ code: "internal", message });
}

function requireShell(): void {
  if (!isTauri()) {
    throw new CoreError({
      code: "internal",
      message: "This page is running outside the pgAnalytics desktop app.",
      hint: "Start it with scripts/run-app (or the pganalytics-desktop binary).",
    });
  }
}

/** Run a core API command; rejects with a CoreError. */
export async function call<K extends CommandName>(command: K, ...args: ArgsOf<K>): Promise<Response<K>> {
  requireShell();
  try {
    return await invoke<Response<K>>("rpc", { command, args: args[0] ?? null });
  } catch (err) {
    throw toCoreError(err);
  }
}

export type StartupStatus =
  | { state: "starting" }
  | { state: "ready" }
  | { state: "failed"; error: CoreErrorBody };

/** Whether the repository has opened yet; does not wait. */
export async function startupStatus(): Promise<StartupStatus> {
  requireShell();
  try {
    return await invoke<StartupStatus>("startup_status");
  } catch (err) {
    throw toCoreError(err);
  }
}

/** Report a timing mark to the shell (logged only under PGANALYTICS_BENCH=1). */
export function benchMark(mark: string): void {
  if (!isTauri()) return;
  invoke("bench_mark", { mark }).catch(() => {
    // A benchmark aid must never disturb the app.
  });
}
