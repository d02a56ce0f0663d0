/**
 * How cells are shown, compared and copied. Pure functions, no DOM.
 */
import { Cell, CellStatus, IColumn, Scalar } from './report';

/**
 * A number in at most 4 significant digits: `0.97341 -> "0.9734"`, `0.97 -> "0.97"`,
 * `1234567.8 -> "1.235e+6"`, `0.0000123 -> "1.23e-5"`. Integers below 10^10 (counts, sizes,
 * seeds) are written in full.
 */
export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) {
    return String(n);
  }
  const abs = Math.abs(n);
  if (Number.isInteger(n) && abs < 1e10) {
    return String(n);
  }
  if (abs >= 1e6 || (abs !== 0 && abs < 1e-3)) {
    const [mantissa, exponent] = n.toExponential(3).split('e');
    return `${String(parseFloat(mantissa))}e${exponent}`;
  }
  return String(parseFloat(n.toPrecision(4)));
}

/** The value a cell sorts and copies by. */
export function cellValue(cell: Cell | undefined): Scalar {
  if (cell === undefined) {
    return null;
  }
  if (cell !== null && typeof cell === 'object') {
    return cell.value;
  }
  return cell;
}

/** The colour class of a cell (`good`, `bad`, `neutral`), if it has one. */
export function cellStatus(cell: Cell | undefined): CellStatus | undefined {
  return cell !== null && typeof cell === 'object' ? cell.status : undefined;
}

/** A value written in full (for tooltips and copying); `null` is empty. */
export function fullText(value: Scalar): string {
  if (value === null) {
    return '';
  }
  return String(value);
}

/** The text a cell shows: a rich cell's `text`, numbers compactly, `null` as empty. */
export function cellText(cell: Cell | undefined): string {
  if (cell !== null && typeof cell === 'object' && cell.text !== undefined) {
    return cell.text;
  }
  const value = cellValue(cell);
  if (typeof value === 'number') {
    return formatNumber(value);
  }
  return fullText(value);
}

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

/**
 * Ascending order of two cell values: numbers numerically and before text, text in natural
 * order (`m2 < m10`), booleans false first. `null` is not handled here (see `sortRows`).
 */
export function compareValues(a: Scalar, b: Scalar): number {
  if (typeof a === 'number' && typeof b === 'number') {
    return a - b;
  }
  if (typeof a === 'boolean' && typeof b === 'boolean') {
    return Number(a) - Number(b);
  }
  if (typeof a === 'number') {
    return -1;
  }
  if (typeof b === 'number') {
    return 1;
  }
  return collator.compare(String(a), String(b));
}

/**
 * Row indices in the order of one column: by cell value, ascending or descending, stable,
 * with empty (`null`) cells last either way.
 *
 * @param rows - The table body.
 * @param column - Index of the column to sort by.
 * @param descending - Whether to reverse the order of non-empty values.
 */
export function sortRows(rows: Cell[][], column: number, descending: boolean): number[] {
  const order = rows.map((_, i) => i);
  const sign = descending ? -1 : 1;
  order.sort((i, j) => {
    const a = cellValue(rows[i][column]);
    const b = cellValue(rows[j][column]);
    if (a === null || b === null) {
      return a === b ? i - j : a === null ? 1 : -1;
    }
    return sign * compareValues(a, b) || i - j;
  });
  return order;
}

function tsvField(text: string): string {
  return text.replace(/[\t\r\n]+/g, ' ');
}

/**
 * Tab-separated text of a table: the header, then each row in `order`, values in full.
 *
 * @param columns - The table's columns.
 * @param rows - The table body.
 * @param order - Row indices in the order to write them (defaults to the original order).
 */
export function tableTSV(columns: IColumn[], rows: Cell[][], order?: number[]): string {
  const lines = [columns.map(c => tsvField(c.name)).join('\t')];
  for (const i of order ?? rows.map((_, k) => k)) {
    lines.push(columns.map((_, j) => tsvField(fullText(cellValue(rows[i][j])))).join('\t'));
  }
  return lines.join('\n') + '\n';
}
