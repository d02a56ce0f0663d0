/**
 * A report envelope as DOM: title, status-coloured summary, notes, one collapsible section
 * per table / text / diff, and the bundle's PNG as a "Plots" section.
 *
 * Used by the MIME renderer and by the Models sidebar's diff view. Payload text only ever
 * reaches the page through `textContent`; an invalid payload becomes an error box followed by
 * its JSON, and rendering never throws.
 */
import { element } from './dom';
import { IReport, ITextSection, Section, reportErrors } from './report';
import { renderTable } from './table';

/** Attribute on the root that tells this renderer's output from the HTML fallback. */
export const RENDERER_ATTRIBUTE = 'data-aimodel-renderer';

const BASE64 = /^[A-Za-z0-9+/=\s]+$/;
const MAX_JSON_CHARS = 100_000;

function diffLineClass(line: string): string {
  if (line.startsWith('+++') || line.startsWith('---')) {
    return 'aimodel-diff-file';
  }
  if (line.startsWith('@@')) {
    return 'aimodel-diff-hunk';
  }
  if (line.startsWith('+')) {
    return 'aimodel-diff-add';
  }
  if (line.startsWith('-')) {
    return 'aimodel-diff-del';
  }
  return 'aimodel-diff-context';
}

function renderText(section: ITextSection): HTMLDetailsElement {
  const details = element('details', `aimodel-section aimodel-section-${section.type}`);
  details.open = section.open;
  details.appendChild(element('summary', 'aimodel-section-title', section.title));
  const pre = element('pre', 'aimodel-pre');
  if (section.type === 'diff') {
    for (const line of section.text.split('\n')) {
      pre.appendChild(element('span', `aimodel-diff-line ${diffLineClass(line)}`, line));
      pre.appendChild(document.createTextNode('\n'));
    }
  } else {
    pre.textContent = section.text;
  }
  details.appendChild(pre);
  return details;
}

function renderSection(section: Section): HTMLDetailsElement {
  return section.type === 'table' ? renderTable(section) : renderText(section);
}

function renderPlots(png: string, title: string): HTMLDetailsElement {
  const details = element('details', 'aimodel-section aimodel-section-plots');
  details.open = true;
  details.appendChild(element('summary', 'aimodel-section-title', 'Plots'));
  const img = element('img', 'aimodel-plots');
  img.alt = `Plots: ${title}`;
  img.src = `data:image/png;base64,${png.replace(/\s+/g, '')}`;
  details.appendChild(img);
  return details;
}

function root(kind: string): HTMLDivElement {
  const node = element('div', `aimodel-report aimodel-report-${kind}`);
  node.setAttribute(RENDERER_ATTRIBUTE, 'lab');
  return node;
}

function renderValid(report: IReport, png?: unknown): HTMLDivElement {
  const node = root(report.kind);
  node.classList.add(`aimodel-status-${report.status}`);
  const header = element('div', 'aimodel-header');
  header.appendChild(element('div', 'aimodel-title', report.title));
  header.appendChild(
    element('div', `aimodel-summary aimodel-summary-${report.status}`, report.summary)
  );
  node.appendChild(header);
  if (report.notes.length > 0) {
    const notes = element('ul', 'aimodel-notes');
    for (const note of report.notes) {
      notes.appendChild(element('li', 'aimodel-note', note));
    }
    node.appendChild(notes);
  }
  for (const section of report.sections) {
    node.appendChild(renderSection(section));
  }
  if (typeof png === 'string' && png.length > 0 && BASE64.test(png)) {
    node.appendChild(renderPlots(png, report.title));
  }
  return node;
}

function safeJSON(payload: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(payload, null, 2) ?? String(payload);
  } catch {
    text = String(payload);
  }
  return text.length > MAX_JSON_CHARS
    ? `${text.slice(0, MAX_JSON_CHARS)}\n… (${text.length - MAX_JSON_CHARS} more characters)`
    : text;
}

/**
 * The error box shown for a payload that is not a report, then the payload's JSON.
 *
 * @param payload - What the output carried.
 * @param problems - What is wrong with it (the first few are shown).
 */
export function renderInvalid(payload: unknown, problems: string[]): HTMLDivElement {
  const node = root('invalid');
  const box = element('div', 'aimodel-error');
  box.setAttribute('role', 'alert');
  const shown = problems.slice(0, 3).join('; ');
  const more = problems.length > 3 ? ` (and ${problems.length - 3} more)` : '';
  box.textContent = `This aimodel report could not be shown: ${shown}${more}.`;
  node.appendChild(box);
  node.appendChild(element('pre', 'aimodel-pre aimodel-json', safeJSON(payload)));
  return node;
}

/**
 * Render a report payload (and the PNG of its plots) into a new element.
 *
 * @param payload - The parsed JSON of an `application/vnd.aimodel.<kind>.v1+json` output.
 * @param png - The bundle's `image/png` (base64), shown as a "Plots" section.
 * @returns The root element (`div.aimodel-report[data-aimodel-renderer="lab"]`).
 */
export function renderReport(payload: unknown, png?: unknown): HTMLDivElement {
  const problems = reportErrors(payload);
  if (problems.length > 0) {
    return renderInvalid(payload, problems);
  }
  try {
    return renderValid(payload as IReport, png);
  } catch (error) {
    return renderInvalid(payload, [`rendering failed (${String(error)})`]);
  }
}
