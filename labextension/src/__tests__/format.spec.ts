import { cellText, formatNumber, sortRows, tableTSV } from '../format';
import { Cell } from '../report';

describe('formatNumber', () => {
  it.each([
    [0.956140350877193, '0.9561'],
    [0.97, '0.97'],
    [12.5, '12.5'],
    [1234.5678, '1235'],
    [114, '114'],
    [-42, '-42'],
    [0, '0'],
    [999999, '999999'],
    [1234567, '1234567'],
    [1994598127, '1994598127'],
    [12345678901, '1.235e+10'],
    [1234567.891, '1.235e+6'],
    [0.00001234, '1.234e-5'],
    [0.001, '0.001'],
    [-0.031, '-0.031'],
    [2e-7, '2e-7']
  ])('%p -> %s', (n, text) => {
    expect(formatNumber(n)).toBe(text);
  });
});

describe('cellText', () => {
  it('shows what a cell says', () => {
    expect(cellText(null)).toBe('');
    expect(cellText(true)).toBe('true');
    expect(cellText('x')).toBe('x');
    expect(cellText({ value: 0.5, text: '50 %' })).toBe('50 %');
    expect(cellText({ value: 0.123456 })).toBe('0.1235');
  });
});

describe('sortRows', () => {
  const rows: Cell[][] = [['b'], [10], [null], [2], ['a10'], ['a9'], [{ value: 5, text: 'five' }]];

  it('puts numbers first, numerically, then text in natural order, empty last', () => {
    expect(sortRows(rows, 0, false)).toEqual([3, 6, 1, 5, 4, 0, 2]);
  });

  it('reverses non-empty values, keeping empty cells last', () => {
    expect(sortRows(rows, 0, true)).toEqual([0, 4, 5, 1, 6, 3, 2]);
  });

  it('is stable', () => {
    expect(sortRows([[1], [0], [1], [0]], 0, false)).toEqual([1, 3, 0, 2]);
    expect(sortRows([[1], [0], [1], [0]], 0, true)).toEqual([0, 2, 1, 3]);
  });
});

describe('tableTSV', () => {
  it('writes full values, flattening tabs and newlines', () => {
    const text = tableTSV(
      [
        { name: 'name', kind: 'text' },
        { name: 'value', kind: 'number' }
      ],
      [
        ['a\tb', 0.123456789],
        ['line\nbreak', { value: -1, text: '−1 pt', status: 'bad' }],
        [null, null]
      ],
      [1, 0, 2]
    );
    expect(text).toBe('name\tvalue\nline break\t-1\na b\t0.123456789\n\t\n');
  });
});
