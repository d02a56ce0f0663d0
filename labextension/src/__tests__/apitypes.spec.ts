/**
 * The REST API checks of `apitypes.ts` against the examples the Python side validates with
 * `api.v1.schema.json` (`docs/api-examples/`), and against broken copies of them.
 */
import {
  diffResponseErrors,
  errorBodyErrors,
  isDiffResponse,
  isErrorBody,
  isModelsResponse,
  modelsResponseErrors
} from '../apitypes';
import { renderReport } from '../view';
import { apiExample } from './fixtures';

const models = apiExample('models');
const diff = apiExample('diff');
const error = apiExample('error');

function changed(example: 'models' | 'diff' | 'error', change: (b: any) => void): unknown {
  const body = apiExample(example);
  change(body);
  return body;
}

describe('docs/api-examples', () => {
  it('are all there', () => {
    expect(models).toBeDefined();
    expect(diff).toBeDefined();
    expect(error).toBeDefined();
  });

  it('models.json is a models response, and nothing else', () => {
    expect(modelsResponseErrors(models)).toEqual([]);
    expect(isModelsResponse(models)).toBe(true);
    expect(isDiffResponse(models)).toBe(false);
    expect(isErrorBody(models)).toBe(false);
    const versions = models.models.flatMap((m: any) => m.versions);
    expect(versions.map((v: any) => v.classes)).toEqual([2, 2, 3]);
  });

  it('diff.json is a diff response that renders, and nothing else', () => {
    expect(diffResponseErrors(diff)).toEqual([]);
    expect(isDiffResponse(diff)).toBe(true);
    expect(isModelsResponse(diff)).toBe(false);
    expect(isErrorBody(diff)).toBe(false);
    const node = renderReport(diff.payload, diff.png);
    expect(node.classList).toContain('aimodel-report-diff');
    expect(node.querySelector('.aimodel-error')).toBeNull();
  });

  it('error.json is an error body, and nothing else', () => {
    expect(errorBodyErrors(error)).toEqual([]);
    expect(isErrorBody(error)).toBe(true);
    expect(isModelsResponse(error)).toBe(false);
    expect(isDiffResponse(error)).toBe(false);
  });
});

describe('the checks refuse what the schema refuses', () => {
  const version = (b: any) => b.models[0].versions[0];

  it.each([
    ['not an object', [], 'models response: not an object'],
    ['no store', changed('models', b => delete b.store), 'models response: missing "store"'],
    [
      'embedded not a boolean',
      changed('models', b => (b.store.embedded = 'yes')),
      'store.embedded: not a boolean'
    ],
    [
      'a description (not part of the API)',
      changed('models', b => (b.models[0].description = 'drifted')),
      'models[0]: unexpected "description"'
    ],
    [
      'an empty name',
      changed('models', b => (b.models[0].name = '')),
      'models[0].name: not a non-empty string'
    ],
    [
      'a version without classes',
      changed('models', b => delete version(b).classes),
      'models[0].versions[0]: missing "classes"'
    ],
    [
      'negative classes',
      changed('models', b => (version(b).classes = -1)),
      'models[0].versions[0].classes: not an integer of at least 0'
    ],
    [
      'fractional classes',
      changed('models', b => (version(b).classes = 2.5)),
      'models[0].versions[0].classes: not an integer of at least 0'
    ],
    [
      'version 0',
      changed('models', b => (version(b).version = 0)),
      'models[0].versions[0].version: not an integer of at least 1'
    ],
    [
      'a ref without version',
      changed('models', b => (version(b).ref = 'cancer-lr')),
      'models[0].versions[0].ref: not a version reference (name/3)'
    ],
    [
      'created not a date',
      changed('models', b => (version(b).created = 'yesterday')),
      'models[0].versions[0].created: not an ISO 8601 date and time with its offset'
    ],
    [
      'a numeric parent',
      changed('models', b => (version(b).parent = 1)),
      'models[0].versions[0].parent: not a string or null'
    ],
    [
      'a metric as a string',
      changed('models', b => (version(b).metrics.val_accuracy = '0.9')),
      'models[0].versions[0].metrics.val_accuracy: not a number or null'
    ],
    [
      'a null alias',
      changed('models', b => (version(b).aliases = [null])),
      'models[0].versions[0].aliases[0]: not a string'
    ],
    [
      'an unknown version key',
      changed('models', b => (version(b).html = '<b>')),
      'models[0].versions[0]: unexpected "html"'
    ]
  ])('models: %s', (_, body, problem) => {
    expect(isModelsResponse(body)).toBe(false);
    expect(modelsResponseErrors(body)).toContain(problem);
  });

  it.each([
    ['png not base64', changed('diff', b => (b.png = 'not base64!')), 'png: not base64 or null'],
    ['no png', changed('diff', b => delete b.png), 'diff response: missing "png"'],
    [
      'a payload of another kind',
      changed('diff', b => (b.payload.kind = 'versions')),
      'payload: kind: not diff'
    ],
    [
      'a payload without summary',
      changed('diff', b => delete b.payload.summary),
      'payload: report: missing "summary"'
    ],
    ['an unknown key', changed('diff', b => (b.extra = true)), 'diff response: unexpected "extra"']
  ])('diff: %s', (_, body, problem) => {
    expect(isDiffResponse(body)).toBe(false);
    expect(diffResponseErrors(body)).toContain(problem);
  });

  it.each([
    ['no message', changed('error', b => delete b.message), 'error: missing "message"'],
    ['a numeric reason', changed('error', b => (b.reason = 404)), 'reason: not a string or null'],
    ['a null traceback', changed('error', b => (b.traceback = null)), 'traceback: not a string'],
    ['an unknown key', changed('error', b => (b.code = 404)), 'error: unexpected "code"']
  ])('error: %s', (_, body, problem) => {
    expect(isErrorBody(body)).toBe(false);
    expect(errorBodyErrors(body)).toContain(problem);
  });

  it('accepts a diff without a figure, null metrics and a 500 body', () => {
    expect(isDiffResponse({ ...apiExample('diff'), png: null })).toBe(true);
    expect(
      isModelsResponse(changed('models', b => (version(b).metrics.val_loss = null)))
    ).toBe(true);
    expect(isErrorBody({ message: 'Unhandled error', reason: null, traceback: '' })).toBe(true);
  });
});
