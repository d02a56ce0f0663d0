/**
 * The report envelope: the payload of every `application/vnd.aimodel.<kind>.v1+json` output.
 *
 * This is the TypeScript side of `aimodel_kernel/display/report.v1.schema.json` (the Python
 * side's definition, see `aimodel_kernel/display/view.py`). `reportErrors` checks the same
 * rules as that JSON Schema, so a payload the kernel validates is one the renderer accepts.
 */

/** Report kinds the kernel emits; each gets its own MIME type. */
export const REPORT_KINDS = [
  'train',
  'evaluation',
  'versions',
  'diff',
  'reproduce',
  'explain',
  'fairness',
  'compress',
  'experiment',
  'leaderboard'
] as const;

export type ReportKind = (typeof REPORT_KINDS)[number];

/** The MIME type of a report kind, e.g. `application/vnd.aimodel.diff.v1+json`. */
export function mimeTypeFor(kind: string): string {
  return `application/vnd.aimodel.${kind}.v1+json`;
}

/** Every MIME type the renderer handles. */
export const REPORT_MIME_TYPES: string[] = REPORT_KINDS.map(mimeTypeFor);

export type Scalar = string | number | boolean | null;
export type CellStatus = 'good' | 'bad' | 'neutral';

/** A cell shown as `text`, sorted and copied by `value`, coloured by `status`. */
export interface IRichCell {
  value: Scalar;
  text?: string;
  status?: CellStatus;
}

export type Cell = Scalar | IRichCell;

export type ColumnKind = 'text' | 'number' | 'code';

export interface IColumn {
  name: string;
  kind: ColumnKind;
}

export interface ITableSection {
  type: 'table';
  title: string;
  columns: IColumn[];
  rows: Cell[][];
  sortable: boolean;
  open: boolean;
}

export interface ITextSection {
  type: 'text' | 'diff';
  title: string;
  text: string;
  open: boolean;
}

export type Section = ITableSection | ITextSection;

export type ReportStatus = 'ok' | 'warning' | 'error';

export interface IReport {
  version: 1;
  kind: string;
  title: string;
  summary: string;
  status: ReportStatus;
  notes: string[];
  sections: Section[];
  data: Record<string, unknown>;
}

const KIND_PATTERN = /^[a-z][a-z0-9_-]*$/;
const REPORT_KEYS = ['version', 'kind', 'title', 'summary', 'status', 'notes', 'sections', 'data'];
const TABLE_KEYS = ['type', 'title', 'columns', 'rows', 'sortable', 'open'];
const TEXT_KEYS = ['type', 'title', 'text', 'open'];
const COLUMN_KEYS = ['name', 'kind'];
const RICH_KEYS = ['value', 'text', 'status'];

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** A JSON scalar (JSON Schema `string | number | boolean | null`). */
export function isScalar(x: unknown): x is Scalar {
  return (
    x === null ||
    typeof x === 'string' ||
    typeof x === 'boolean' ||
    (typeof x === 'number' && Number.isFinite(x))
  );
}

/** The rich form of a cell, `{"value", "text"?, "status"?}`. */
export function isRichCell(x: unknown): x is IRichCell {
  return isObject(x) && cellErrors(x, '').length === 0;
}

/** Problems with an object's keys: missing required ones, and any not allowed. */
function keyErrors(
  x: Record<string, unknown>,
  path: string,
  required: string[],
  allowed: string[]
): string[] {
  const errors: string[] = [];
  for (const key of required) {
    if (!(key in x)) {
      errors.push(`${path || 'report'}: missing "${key}"`);
    }
  }
  for (const key of Object.keys(x)) {
    if (!allowed.includes(key)) {
      errors.push(`${path || 'report'}: unexpected "${key}"`);
    }
  }
  return errors;
}

function cellErrors(x: unknown, path: string): string[] {
  if (isScalar(x)) {
    return [];
  }
  if (!isObject(x)) {
    return [`${path}: not a cell`];
  }
  const errors = keyErrors(x, path, ['value'], RICH_KEYS);
  if ('value' in x && !isScalar(x.value)) {
    errors.push(`${path}.value: not a scalar`);
  }
  if ('text' in x && typeof x.text !== 'string') {
    errors.push(`${path}.text: not a string`);
  }
  if ('status' in x && !['good', 'bad', 'neutral'].includes(x.status as string)) {
    errors.push(`${path}.status: not good, bad or neutral`);
  }
  return errors;
}

function expect(ok: boolean, message: string, errors: string[]): void {
  if (!ok) {
    errors.push(message);
  }
}

function tableErrors(s: Record<string, unknown>, path: string): string[] {
  const errors = keyErrors(s, path, TABLE_KEYS, TABLE_KEYS);
  expect(typeof s.title === 'string', `${path}.title: not a string`, errors);
  expect(typeof s.sortable === 'boolean', `${path}.sortable: not a boolean`, errors);
  expect(typeof s.open === 'boolean', `${path}.open: not a boolean`, errors);
  if (!Array.isArray(s.columns)) {
    errors.push(`${path}.columns: not an array`);
  } else {
    s.columns.forEach((c, i) => {
      const at = `${path}.columns[${i}]`;
      if (!isObject(c)) {
        errors.push(`${at}: not an object`);
        return;
      }
      errors.push(...keyErrors(c, at, COLUMN_KEYS, COLUMN_KEYS));
      expect(typeof c.name === 'string', `${at}.name: not a string`, errors);
      expect(
        ['text', 'number', 'code'].includes(c.kind as string),
        `${at}.kind: not text, number or code`,
        errors
      );
    });
  }
  if (!Array.isArray(s.rows)) {
    errors.push(`${path}.rows: not an array`);
  } else {
    s.rows.forEach((row, i) => {
      if (!Array.isArray(row)) {
        errors.push(`${path}.rows[${i}]: not an array`);
        return;
      }
      row.forEach((c, j) => errors.push(...cellErrors(c, `${path}.rows[${i}][${j}]`)));
    });
  }
  return errors;
}

function textErrors(s: Record<string, unknown>, path: string): string[] {
  const errors = keyErrors(s, path, TEXT_KEYS, TEXT_KEYS);
  expect(typeof s.title === 'string', `${path}.title: not a string`, errors);
  expect(typeof s.text === 'string', `${path}.text: not a string`, errors);
  expect(typeof s.open === 'boolean', `${path}.open: not a boolean`, errors);
  return errors;
}

function sectionErrors(s: unknown, path: string): string[] {
  if (!isObject(s)) {
    return [`${path}: not an object`];
  }
  if (s.type === 'table') {
    return tableErrors(s, path);
  }
  if (s.type === 'text' || s.type === 'diff') {
    return textErrors(s, path);
  }
  return [`${path}.type: not table, text or diff`];
}

/**
 * Everything wrong with a payload, as short `path: problem` lines (empty when it is valid).
 *
 * @param x - A parsed JSON value.
 * @returns The problems found, in document order.
 */
export function reportErrors(x: unknown): string[] {
  if (!isObject(x)) {
    return ['report: not an object'];
  }
  const errors = keyErrors(x, '', REPORT_KEYS, REPORT_KEYS);
  expect(x.version === 1, 'version: not 1', errors);
  expect(
    typeof x.kind === 'string' && KIND_PATTERN.test(x.kind),
    'kind: not a lower-case name',
    errors
  );
  expect(typeof x.title === 'string', 'title: not a string', errors);
  expect(typeof x.summary === 'string', 'summary: not a string', errors);
  expect(
    ['ok', 'warning', 'error'].includes(x.status as string),
    'status: not ok, warning or error',
    errors
  );
  if (!Array.isArray(x.notes)) {
    errors.push('notes: not an array');
  } else {
    x.notes.forEach((n, i) =>
      expect(typeof n === 'string', `notes[${i}]: not a string`, errors)
    );
  }
  if (!Array.isArray(x.sections)) {
    errors.push('sections: not an array');
  } else {
    x.sections.forEach((s, i) => errors.push(...sectionErrors(s, `sections[${i}]`)));
  }
  expect(isObject(x.data), 'data: not an object', errors);
  return errors;
}

/** Whether a parsed JSON value is a valid report envelope (the JSON Schema's rules). */
export function isReport(x: unknown): x is IReport {
  return reportErrors(x).length === 0;
}
