/**
 * The response bodies of the server extension's REST API (`aimodel/api/...`).
 *
 * This is the TypeScript side of `aimodel_kernel/server/api.v1.schema.json` (the Python side's
 * definition, see `aimodel_kernel/server/schema.py`). `modelsResponseErrors`,
 * `diffResponseErrors` and `errorBodyErrors` check the same rules as that JSON Schema, so a
 * body the server's tests validate is one the frontend accepts. No JupyterLab imports: the
 * Models panel and the diff view check what they are given with these.
 */
import { IReport, reportErrors } from './report';

/** The tracking store a notebook directory resolves to. */
export interface IStoreInfo {
  uri: string;
  embedded: boolean;
}

/** One registered model version (newest first in `IModelInfo.versions`). */
export interface IVersionInfo {
  /** `name/3`. */
  ref: string;
  version: number;
  aliases: string[];
  /** ISO 8601 to the second with its UTC offset, e.g. `2025-01-02T03:04:05+00:00`. */
  created: string;
  /** The reference of the version it was trained from. */
  parent: string | null;
  /** The model's class name, '' when unknown. */
  model_type: string;
  /** binary, multiclass, regression ..., '' when unknown. */
  task: string;
  /** How many classes a classifier has, 0 otherwise. */
  classes: number;
  /** Headline metrics; `null` for a value JSON cannot carry (NaN, infinity). */
  metrics: Record<string, number | null>;
  run_id: string;
  /** The run's status (FINISHED, FAILED ...), '' without a run. */
  status: string;
}

export interface IModelInfo {
  name: string;
  versions: IVersionInfo[];
}

/** `GET aimodel/api/models?dir=...` */
export interface IModelsResponse {
  store: IStoreInfo;
  models: IModelInfo[];
}

/** `GET aimodel/api/diff?dir=...&a=...&b=...`: a report of kind `diff` and its figure. */
export interface IDiffResponse {
  payload: IReport;
  /** The report's PNG, base64; `null` when it has none. */
  png: string | null;
}

/** The body of every 4xx/5xx answer. */
export interface IErrorBody {
  message: string;
  reason: string | null;
  /** Only on a 500 for an unexpected fault. */
  traceback?: string;
}

const STORE_KEYS = ['uri', 'embedded'];
const VERSION_KEYS = [
  'ref',
  'version',
  'aliases',
  'created',
  'parent',
  'model_type',
  'task',
  'classes',
  'metrics',
  'run_id',
  'status'
];
const MODEL_KEYS = ['name', 'versions'];
const MODELS_KEYS = ['store', 'models'];
const DIFF_KEYS = ['payload', 'png'];
const ERROR_REQUIRED = ['message', 'reason'];
const ERROR_KEYS = ['message', 'reason', 'traceback'];

const REF_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*\/[1-9][0-9]*$/;
const CREATED_PATTERN =
  /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]*={0,2}$/;

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** A JSON Schema `number` (JSON has no NaN or infinity). */
function isNumber(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** A JSON Schema `integer` of at least `minimum`. */
function isInteger(x: unknown, minimum: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= minimum;
}

function isString(x: unknown): x is string {
  return typeof x === 'string';
}

function expect(ok: boolean, message: string, errors: string[]): void {
  if (!ok) {
    errors.push(message);
  }
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
      errors.push(`${path}: missing "${key}"`);
    }
  }
  for (const key of Object.keys(x)) {
    if (!allowed.includes(key)) {
      errors.push(`${path}: unexpected "${key}"`);
    }
  }
  return errors;
}

/** Problems with each item of an array (`not an array` when it is none). */
function arrayErrors(
  x: unknown,
  path: string,
  item: (value: unknown, at: string) => string[]
): string[] {
  if (!Array.isArray(x)) {
    return [`${path}: not an array`];
  }
  return x.flatMap((value, i) => item(value, `${path}[${i}]`));
}

function storeErrors(x: unknown, path: string): string[] {
  if (!isObject(x)) {
    return [`${path}: not an object`];
  }
  const errors = keyErrors(x, path, STORE_KEYS, STORE_KEYS);
  expect(isString(x.uri), `${path}.uri: not a string`, errors);
  expect(typeof x.embedded === 'boolean', `${path}.embedded: not a boolean`, errors);
  return errors;
}

function versionErrors(x: unknown, path: string): string[] {
  if (!isObject(x)) {
    return [`${path}: not an object`];
  }
  const errors = keyErrors(x, path, VERSION_KEYS, VERSION_KEYS);
  expect(
    isString(x.ref) && REF_PATTERN.test(x.ref),
    `${path}.ref: not a version reference (name/3)`,
    errors
  );
  expect(isInteger(x.version, 1), `${path}.version: not an integer of at least 1`, errors);
  errors.push(
    ...arrayErrors(x.aliases, `${path}.aliases`, (a, at) =>
      isString(a) ? [] : [`${at}: not a string`]
    )
  );
  expect(
    isString(x.created) && CREATED_PATTERN.test(x.created),
    `${path}.created: not an ISO 8601 date and time with its offset`,
    errors
  );
  expect(
    x.parent === null || isString(x.parent),
    `${path}.parent: not a string or null`,
    errors
  );
  expect(isString(x.model_type), `${path}.model_type: not a string`, errors);
  expect(isString(x.task), `${path}.task: not a string`, errors);
  expect(isInteger(x.classes, 0), `${path}.classes: not an integer of at least 0`, errors);
  if (!isObject(x.metrics)) {
    errors.push(`${path}.metrics: not an object`);
  } else {
    for (const [name, value] of Object.entries(x.metrics)) {
      expect(
        value === null || isNumber(value),
        `${path}.metrics.${name}: not a number or null`,
        errors
      );
    }
  }
  expect(isString(x.run_id), `${path}.run_id: not a string`, errors);
  expect(isString(x.status), `${path}.status: not a string`, errors);
  return errors;
}

function modelErrors(x: unknown, path: string): string[] {
  if (!isObject(x)) {
    return [`${path}: not an object`];
  }
  const errors = keyErrors(x, path, MODEL_KEYS, MODEL_KEYS);
  expect(isString(x.name) && x.name.length > 0, `${path}.name: not a non-empty string`, errors);
  errors.push(...arrayErrors(x.versions, `${path}.versions`, versionErrors));
  return errors;
}

/**
 * Everything wrong with a `GET models` body, as short `path: problem` lines (empty when valid).
 *
 * @param x - A parsed JSON value.
 * @returns The problems found, in document order.
 */
export function modelsResponseErrors(x: unknown): string[] {
  if (!isObject(x)) {
    return ['models response: not an object'];
  }
  const errors = keyErrors(x, 'models response', MODELS_KEYS, MODELS_KEYS);
  if ('store' in x) {
    errors.push(...storeErrors(x.store, 'store'));
  }
  if ('models' in x) {
    errors.push(...arrayErrors(x.models, 'models', modelErrors));
  }
  return errors;
}

/**
 * Everything wrong with a `GET diff` body (its `payload` must be a report of kind `diff`).
 *
 * @param x - A parsed JSON value.
 * @returns The problems found, `path: problem` lines; empty when it is valid.
 */
export function diffResponseErrors(x: unknown): string[] {
  if (!isObject(x)) {
    return ['diff response: not an object'];
  }
  const errors = keyErrors(x, 'diff response', DIFF_KEYS, DIFF_KEYS);
  if ('payload' in x) {
    errors.push(...reportErrors(x.payload).map(problem => `payload: ${problem}`));
    if (isObject(x.payload) && 'kind' in x.payload) {
      expect(x.payload.kind === 'diff', 'payload: kind: not diff', errors);
    }
  }
  if ('png' in x) {
    expect(
      x.png === null || (isString(x.png) && BASE64_PATTERN.test(x.png)),
      'png: not base64 or null',
      errors
    );
  }
  return errors;
}

/**
 * Everything wrong with an error body (`{"message", "reason", "traceback"?}`).
 *
 * @param x - A parsed JSON value.
 * @returns The problems found, `path: problem` lines; empty when it is valid.
 */
export function errorBodyErrors(x: unknown): string[] {
  if (!isObject(x)) {
    return ['error: not an object'];
  }
  const errors = keyErrors(x, 'error', ERROR_REQUIRED, ERROR_KEYS);
  expect(!('message' in x) || isString(x.message), 'message: not a string', errors);
  expect(
    !('reason' in x) || x.reason === null || isString(x.reason),
    'reason: not a string or null',
    errors
  );
  expect(!('traceback' in x) || isString(x.traceback), 'traceback: not a string', errors);
  return errors;
}

/** Whether a parsed JSON value is a valid `GET models` body (the JSON Schema's rules). */
export function isModelsResponse(x: unknown): x is IModelsResponse {
  return modelsResponseErrors(x).length === 0;
}

/** Whether a parsed JSON value is a valid `GET diff` body (the JSON Schema's rules). */
export function isDiffResponse(x: unknown): x is IDiffResponse {
  return diffResponseErrors(x).length === 0;
}

/** Whether a parsed JSON value is a valid error body (the JSON Schema's rules). */
export function isErrorBody(x: unknown): x is IErrorBody {
  return errorBodyErrors(x).length === 0;
}
