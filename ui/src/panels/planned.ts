// Panels that later releases fill. They say what is coming and when; they never show made-up
// data. Release numbers follow the project's plan (one issue per release after 0.1).

import { h } from "../dom";

export interface PlannedPanel {
  title: string;
  release: string;
  summary: string;
  items: string[];
}

export const PLANNED: Record<string, PlannedPanel> = {
  reports: {
    title: "Compliance reports",
    release: "0.5",
    summary: "PDF reports built from the audit log and the backup catalogue.",
    items: [
      "GDPR, HIPAA, SOX and PCI-DSS report templates",
      "Evidence of backup coverage, restore tests and audit-log integrity",
    ],
  },
};

export function renderPlanned(container: HTMLElement, key: string): void {
  const panel = PLANNED[key];
  if (!panel) return;
  container.append(
    h(
      "section",
      { class: "panel", "data-testid": `panel-${key}` },
      h(
        "header",
        { class: "panel-header" },
        h("h1", {}, panel.title),
        h("span", { class: "badge badge-planned", "data-testid": "planned-release" }, `Coming in release ${panel.release}`),
      ),
      h(
        "div",
        { class: "card planned" },
        h("p", {}, panel.summary),
        h("ul", {}, ...panel.items.map((item) => h("li", {}, item))),
        h(
          "p",
          { class: "muted" },
          "This panel shows no data until that release. Servers you register now in the Servers panel will be used by it.",
        ),
      ),
    ),
  );
}
