import { EditorState } from '@codemirror/state';
import { EditorView } from '@codemirror/view';

import { IMagicToken, aimodelMagics, tokenizeMagicLine } from '../highlight';

function spans(line: string): [string, string][] {
  return tokenizeMagicLine(line).map((t: IMagicToken) => [t.kind, line.slice(t.from, t.to)]);
}

describe('tokenizeMagicLine', () => {
  it('marks the magic, its flags and version references', () => {
    expect(spans('%train model X_train y_train --epochs 10 --name my-model')).toEqual([
      ['magic', '%train'],
      ['flag', '--epochs'],
      ['flag', '--name']
    ]);
    expect(spans('%diff fraud/1 fraud@champion')).toEqual([
      ['magic', '%diff'],
      ['ref', 'fraud/1'],
      ['ref', 'fraud@champion']
    ]);
  });

  it('handles indentation, assignment and flag=value references', () => {
    expect(spans('    r = %evaluate clf X y --ci --version=clf/3')).toEqual([
      ['magic', '%evaluate'],
      ['flag', '--ci'],
      ['flag', '--version'],
      ['ref', 'clf/3']
    ]);
    expect(tokenizeMagicLine('  %versions')).toEqual([{ from: 2, to: 11, kind: 'magic' }]);
  });

  it('knows every magic', () => {
    for (const magic of [
      'train',
      'evaluate',
      'explain',
      'fairness',
      'compress',
      'versions',
      'diff',
      'reproduce',
      'promote',
      'workers',
      'experiment',
      'aimodel'
    ]) {
      expect(spans(`%${magic} x`)[0]).toEqual(['magic', `%${magic}`]);
    }
  });

  it('ignores other lines', () => {
    for (const line of [
      '',
      'x = 1  # %train model',
      '%timeit f()',
      '%trainer x',
      '%%train',
      'print("%train --epochs")',
      '%matplotlib inline'
    ]) {
      expect(tokenizeMagicLine(line)).toEqual([]);
    }
  });

  it('stops at a comment and skips words that are not references', () => {
    expect(spans('%promote fraud/2 champion # fraud/3 --x')).toEqual([
      ['magic', '%promote'],
      ['ref', 'fraud/2']
    ]);
    expect(spans('%explain model X_test --row 3 --class 1/2x')).toEqual([
      ['magic', '%explain'],
      ['flag', '--row'],
      ['flag', '--class']
    ]);
  });
});

describe('the CodeMirror extension', () => {
  it('decorates magic lines in a real editor view', () => {
    const view = new EditorView({
      state: EditorState.create({
        doc: 'import numpy\n%diff fraud/1 fraud@champion --data X\nx = 1',
        extensions: [aimodelMagics()]
      }),
      parent: document.body
    });
    try {
      const text = (selector: string): string[] =>
        [...view.contentDOM.querySelectorAll(selector)].map(n => n.textContent ?? '');
      expect(text('.cm-aimodel-magic')).toEqual(['%diff']);
      expect(text('.cm-aimodel-ref')).toEqual(['fraud/1', 'fraud@champion']);
      expect(text('.cm-aimodel-flag')).toEqual(['--data']);

      view.dispatch({ changes: { from: 0, to: 12, insert: '%train net X y --epochs 3' } });
      expect(text('.cm-aimodel-magic')).toEqual(['%train', '%diff']);
      expect(text('.cm-aimodel-flag')).toEqual(['--epochs', '--data']);
    } finally {
      view.destroy();
    }
  });
});
