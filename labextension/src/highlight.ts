/**
 * Highlighting of aimodel magic lines in code cells (CodeMirror 6).
 *
 * On a line that starts with one of our magics (`%train ...`, also `r = %evaluate ...`), the
 * magic name gets `cm-aimodel-magic`, `--flags` get `cm-aimodel-flag` and version references
 * (`name/3`, `name@champion`) get `cm-aimodel-ref`. `tokenizeMagicLine` is the whole matching
 * logic; the view plugin only turns its tokens into mark decorations for the visible lines.
 */
import { Extension, RangeSetBuilder } from '@codemirror/state';
import {
  Decoration,
  DecorationSet,
  EditorView,
  ViewPlugin,
  ViewUpdate
} from '@codemirror/view';

/** Our line magics. */
export const MAGICS = [
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
];

export type TokenKind = 'magic' | 'flag' | 'ref';

/** A highlighted span of a line, `[from, to)` in characters. */
export interface IMagicToken {
  from: number;
  to: number;
  kind: TokenKind;
}

// Optional indentation and `target =`, then `%magic` followed by a space or the line end.
const MAGIC_LINE = new RegExp(
  `^(\\s*(?:[A-Za-z_][\\w.]*\\s*=\\s*)?)(%(?:${MAGICS.join('|')}))(?=\\s|$)`
);
const FLAG = /^--[A-Za-z][\w-]*/;
const REF = /^[A-Za-z0-9_][\w.-]*(?:\/\d+|@[A-Za-z_][\w-]*)$/;
const WORD = /\S+/g;

/**
 * The highlighted tokens of one line of code; empty unless the line is one of our magics.
 *
 * @param line - The text of one line.
 * @returns Tokens in order: the magic name, then flags and version references.
 */
export function tokenizeMagicLine(line: string): IMagicToken[] {
  const head = MAGIC_LINE.exec(line);
  if (head === null) {
    return [];
  }
  const start = head[1].length;
  const tokens: IMagicToken[] = [{ from: start, to: start + head[2].length, kind: 'magic' }];
  WORD.lastIndex = start + head[2].length;
  for (let m = WORD.exec(line); m !== null; m = WORD.exec(line)) {
    const word = m[0];
    if (word.startsWith('#')) {
      break;
    }
    const flag = FLAG.exec(word);
    if (flag) {
      tokens.push({ from: m.index, to: m.index + flag[0].length, kind: 'flag' });
      const eq = word.indexOf('=');
      if (eq === flag[0].length && REF.test(word.slice(eq + 1))) {
        tokens.push({ from: m.index + eq + 1, to: m.index + word.length, kind: 'ref' });
      }
    } else if (REF.test(word)) {
      tokens.push({ from: m.index, to: m.index + word.length, kind: 'ref' });
    }
  }
  return tokens;
}

const MARKS: Record<TokenKind, Decoration> = {
  magic: Decoration.mark({ class: 'cm-aimodel-magic' }),
  flag: Decoration.mark({ class: 'cm-aimodel-flag' }),
  ref: Decoration.mark({ class: 'cm-aimodel-ref' })
};

function decorate(view: EditorView): DecorationSet {
  const builder = new RangeSetBuilder<Decoration>();
  const doc = view.state.doc;
  let lastLine = 0;
  for (const { from, to } of view.visibleRanges) {
    for (let pos = from; pos <= to; ) {
      const line = doc.lineAt(pos);
      if (line.number > lastLine) {
        lastLine = line.number;
        for (const token of tokenizeMagicLine(line.text)) {
          builder.add(line.from + token.from, line.from + token.to, MARKS[token.kind]);
        }
      }
      pos = line.to + 1;
    }
  }
  return builder.finish();
}

/** The view plugin that marks our magic lines. */
export const magicHighlighter = ViewPlugin.fromClass(
  class {
    decorations: DecorationSet;

    constructor(view: EditorView) {
      this.decorations = decorate(view);
    }

    update(update: ViewUpdate): void {
      if (update.docChanged || update.viewportChanged) {
        this.decorations = decorate(update.view);
      }
    }
  },
  { decorations: plugin => plugin.decorations }
);

/** The CodeMirror extension to add to code editors. */
export function aimodelMagics(): Extension {
  return [magicHighlighter];
}
