// The native folder dialog of the Restore wizard (tauri-plugin-dialog; the window's capability
// allows `dialog:allow-open` and nothing else of the plugin). Besides ipc.ts this is the only
// module importing @tauri-apps/*; it only chooses a path, which the wizard then sends to the
// core like a typed one.

import { isTauri } from "@tauri-apps/api/core";
import { open } from "@tauri-apps/plugin-dialog";
import { CoreError } from "../ipc";

/** Let the user pick a folder; `null` when the dialog was cancelled. */
export async function chooseFolder(title: string, start: string | undefined): Promise<string | null> {
  if (!isTauri()) {
    throw new CoreError({
      code: "internal",
      message: "The folder dialog needs the pgAnalytics desktop app.",
      hint: "type the folder's path in the field instead",
    });
  }
  try {
    const chosen = await open({ directory: true, multiple: false, title, defaultPath: start || undefined });
    return typeof chosen === "string" ? chosen : null;
  } catch (err) {
    throw new CoreError({
      code: "internal",
      message: `The folder dialog could not open: ${err instanceof Error ? err.message : String(err)}`,
      hint: "type the folder's path in the field instead",
    });
  }
}
