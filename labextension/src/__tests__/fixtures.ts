/**
 * A hand-written report in the envelope format, the example reports generated from real
 * kernels in `docs/report-examples/` (when present), and the REST API's example bodies
 * generated from a real store in `docs/api-examples/`.
 */
import * as fs from 'fs';
import * as path from 'path';

import { IReport } from '../report';

export function evaluationFixture(): IReport {
  return {
    version: 1,
    kind: 'evaluation',
    title: 'Evaluation of clf on X_test',
    summary: 'accuracy 0.9561 [0.93, 0.98] on 114 rows',
    status: 'warning',
    notes: ['class 1 has only 3 rows', 'bootstrap: 1000 resamples'],
    sections: [
      {
        type: 'table',
        title: 'Metrics',
        columns: [
          { name: 'metric', kind: 'text' },
          { name: 'value', kind: 'number' },
          { name: 'delta', kind: 'number' }
        ],
        rows: [
          ['accuracy', 0.956140350877193, { value: 0.012, text: '+1.2 pt', status: 'good' }],
          ['f1', 0.9491525423728814, { value: -0.031, text: '-3.1 pt', status: 'bad' }],
          ['log_loss', 0.12, null],
          ['rows', 114, { value: 0, text: '±0', status: 'neutral' }],
          ['m10', 1234567.891, 0.00001234]
        ],
        sortable: true,
        open: true
      },
      {
        type: 'table',
        title: 'Per class',
        columns: [
          { name: 'class', kind: 'code' },
          { name: 'support', kind: 'number' }
        ],
        rows: [
          ['b\tad', 40],
          ['good', 74]
        ],
        sortable: false,
        open: false
      },
      { type: 'text', title: 'Command', text: '%evaluate clf X_test y_test --ci', open: false },
      {
        type: 'diff',
        title: 'Code',
        text: '--- a/cell\n+++ b/cell\n@@ -1,2 +1,2 @@\n-clf = LogisticRegression(C=1.0)\n+clf = LogisticRegression(C=0.05)\n fit(X, y)',
        open: true
      }
    ],
    data: { metrics: { accuracy: 0.956140350877193 } }
  };
}

/** A 1×1 PNG, base64. */
export const PNG_1PX =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

/** The directory of generated examples, relative to this file. */
export const EXAMPLES_DIR = path.resolve(__dirname, '../../../docs/report-examples');

/** `[file name, parsed JSON]` of every generated example (none when the folder is absent). */
export function reportExamples(): [string, unknown][] {
  if (!fs.existsSync(EXAMPLES_DIR)) {
    return [];
  }
  return fs
    .readdirSync(EXAMPLES_DIR)
    .filter(name => name.endsWith('.json'))
    .sort()
    .map(name => [name, JSON.parse(fs.readFileSync(path.join(EXAMPLES_DIR, name), 'utf-8'))]);
}

/** The directory of generated REST API examples (`scripts/make_api_examples.py`). */
export const API_EXAMPLES_DIR = path.resolve(__dirname, '../../../docs/api-examples');

/**
 * A generated REST API example, `models`, `diff` or `error`, parsed afresh on every call
 * (`undefined` when the file is absent).
 */
export function apiExample(name: 'models' | 'diff' | 'error'): any {
  const file = path.join(API_EXAMPLES_DIR, `${name}.json`);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf-8')) : undefined;
}
