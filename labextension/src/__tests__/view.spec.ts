import { RENDERER_ATTRIBUTE, renderReport } from '../view';
import { evaluationFixture, PNG_1PX } from './fixtures';

function metricsTable(root: HTMLElement): HTMLTableElement {
  return root.querySelectorAll<HTMLTableElement>('table.aimodel-table')[0];
}

function column(table: HTMLTableElement, index: number): string[] {
  return [...table.querySelectorAll('tbody tr')].map(
    tr => tr.querySelectorAll('td')[index].textContent ?? ''
  );
}

function header(table: HTMLTableElement, index: number): HTMLTableCellElement {
  return table.querySelectorAll('th')[index];
}

describe('renderReport', () => {
  it('marks the root as this renderer', () => {
    const root = renderReport(evaluationFixture());
    expect(root.getAttribute(RENDERER_ATTRIBUTE)).toBe('lab');
    expect(root.classList).toContain('aimodel-report');
    expect(root.classList).toContain('aimodel-report-evaluation');
  });

  it('shows title, a status-coloured summary and the notes', () => {
    const root = renderReport(evaluationFixture());
    expect(root.querySelector('.aimodel-title')!.textContent).toBe('Evaluation of clf on X_test');
    const summary = root.querySelector('.aimodel-summary')!;
    expect(summary.textContent).toBe('accuracy 0.9561 [0.93, 0.98] on 114 rows');
    expect(summary.classList).toContain('aimodel-summary-warning');
    expect([...root.querySelectorAll('.aimodel-note')].map(n => n.textContent)).toEqual([
      'class 1 has only 3 rows',
      'bootstrap: 1000 resamples'
    ]);
  });

  it('puts each section in a <details> opened as the payload says', () => {
    const root = renderReport(evaluationFixture());
    const sections = [...root.querySelectorAll('details.aimodel-section')] as HTMLDetailsElement[];
    expect(sections.map(s => s.querySelector('summary')!.textContent)).toEqual([
      'Metrics',
      'Per class',
      'Command',
      'Code'
    ]);
    expect(sections.map(s => s.open)).toEqual([true, false, false, true]);
    expect(sections[2].querySelector('pre')!.textContent).toBe('%evaluate clf X_test y_test --ci');
  });

  it('formats numbers compactly with the full value as a tooltip', () => {
    const table = metricsTable(renderReport(evaluationFixture()));
    const cells = table.querySelectorAll('tbody tr td:nth-child(2)');
    expect(cells[0].textContent).toBe('0.9561');
    expect(cells[0].getAttribute('title')).toBe('0.956140350877193');
    expect(cells[3].textContent).toBe('114');
    expect(cells[4].textContent).toBe('1.235e+6');
    expect(cells[4].getAttribute('title')).toBe('1234567.891');
    expect(cells[0].classList).toContain('aimodel-number');
  });

  it('shows rich cells as their text, coloured by status, with the value as tooltip', () => {
    const table = metricsTable(renderReport(evaluationFixture()));
    const deltas = [...table.querySelectorAll('tbody tr td:nth-child(3)')];
    expect(deltas.map(td => td.textContent)).toEqual(['+1.2 pt', '-3.1 pt', '', '±0', '1.234e-5']);
    expect(deltas[0].classList).toContain('aimodel-good');
    expect(deltas[1].classList).toContain('aimodel-bad');
    expect(deltas[1].classList).not.toContain('aimodel-good');
    expect(deltas[2].classList).not.toContain('aimodel-bad');
    expect(deltas[3].classList).toContain('aimodel-neutral');
    expect(deltas[1].getAttribute('title')).toBe('-0.031');
  });

  it('sorts numbers numerically by value and toggles the direction', () => {
    const table = metricsTable(renderReport(evaluationFixture()));
    const value = header(table, 1);
    expect(value.getAttribute('aria-sort')).toBe('none');
    value.querySelector('button')!.click();
    expect(column(table, 1)).toEqual(['0.12', '0.9492', '0.9561', '114', '1.235e+6']);
    expect(value.getAttribute('aria-sort')).toBe('ascending');
    value.click();
    expect(column(table, 1)).toEqual(['1.235e+6', '114', '0.9561', '0.9492', '0.12']);
    expect(value.getAttribute('aria-sort')).toBe('descending');
    value.click();
    expect(value.getAttribute('aria-sort')).toBe('ascending');
  });

  it('sorts rich cells by value, not by their text, with empty cells last', () => {
    const table = metricsTable(renderReport(evaluationFixture()));
    header(table, 2).click();
    expect(column(table, 2)).toEqual(['-3.1 pt', '±0', '1.234e-5', '+1.2 pt', '']);
    header(table, 2).click();
    expect(column(table, 2)).toEqual(['+1.2 pt', '1.234e-5', '±0', '-3.1 pt', '']);
    expect(header(table, 1).getAttribute('aria-sort')).toBe('none');
  });

  it('sorts text naturally', () => {
    const table = metricsTable(renderReport(evaluationFixture()));
    header(table, 0).click();
    expect(column(table, 0)).toEqual(['accuracy', 'f1', 'log_loss', 'm10', 'rows']);
    header(table, 0).click();
    expect(column(table, 0)).toEqual(['rows', 'm10', 'log_loss', 'f1', 'accuracy']);
  });

  it('leaves unsortable tables without sort buttons', () => {
    const root = renderReport(evaluationFixture());
    const table = root.querySelectorAll<HTMLTableElement>('table.aimodel-table')[1];
    expect(table.querySelector('button')).toBeNull();
    expect(header(table, 0).hasAttribute('aria-sort')).toBe(false);
    expect(table.querySelector('td code')!.textContent).toBe('b\tad');
  });

  it('copies the table as TSV of full values in the order shown', async () => {
    let copied = '';
    Object.defineProperty(navigator, 'clipboard', {
      configurable: true,
      value: { writeText: (text: string) => Promise.resolve(void (copied = text)) }
    });
    try {
      const root = renderReport(evaluationFixture());
      const table = metricsTable(root);
      header(table, 1).click();
      header(table, 1).click();
      const button = root.querySelector<HTMLButtonElement>('.aimodel-copy')!;
      button.click();
      await new Promise(resolve => setTimeout(resolve, 0));
      expect(copied).toBe(
        [
          'metric\tvalue\tdelta',
          'm10\t1234567.891\t0.00001234',
          'rows\t114\t0',
          'accuracy\t0.956140350877193\t0.012',
          'f1\t0.9491525423728814\t-0.031',
          'log_loss\t0.12\t',
          ''
        ].join('\n')
      );
      expect(button.textContent).toBe('copied');
    } finally {
      delete (navigator as any).clipboard;
    }
  });

  it('colours diff lines', () => {
    const root = renderReport(evaluationFixture());
    const lines = [...root.querySelectorAll('.aimodel-section-diff .aimodel-diff-line')];
    const classOf = (text: string): string[] =>
      [...lines.find(l => l.textContent === text)!.classList].filter(c => c !== 'aimodel-diff-line');
    expect(classOf('+clf = LogisticRegression(C=0.05)')).toEqual(['aimodel-diff-add']);
    expect(classOf('-clf = LogisticRegression(C=1.0)')).toEqual(['aimodel-diff-del']);
    expect(classOf('--- a/cell')).toEqual(['aimodel-diff-file']);
    expect(classOf('@@ -1,2 +1,2 @@')).toEqual(['aimodel-diff-hunk']);
    expect(classOf(' fit(X, y)')).toEqual(['aimodel-diff-context']);
    expect(root.querySelector('.aimodel-section-diff pre')!.textContent).toBe(
      evaluationFixture().sections[3].type === 'diff'
        ? (evaluationFixture().sections[3] as { text: string }).text + '\n'
        : ''
    );
  });

  it('shows the bundle PNG as a Plots section', () => {
    const root = renderReport(evaluationFixture(), PNG_1PX);
    const plots = root.querySelector('details.aimodel-section-plots')!;
    expect(plots.querySelector('summary')!.textContent).toBe('Plots');
    expect(plots.querySelector('img')!.getAttribute('src')).toBe(
      `data:image/png;base64,${PNG_1PX}`
    );
    expect(renderReport(evaluationFixture(), '"><script>').querySelector('img')).toBeNull();
    expect(renderReport(evaluationFixture()).querySelector('img')).toBeNull();
  });

  it('never turns payload text into markup', () => {
    const report = evaluationFixture();
    report.title = '<img src=x onerror="window.hacked=1">';
    report.sections[0].title = '<b>bold</b>';
    const root = renderReport(report);
    expect(root.querySelector('img')).toBeNull();
    expect(root.querySelector('b')).toBeNull();
    expect(root.querySelector('.aimodel-title')!.textContent).toBe(report.title);
  });

  it('renders ragged rows without failing', () => {
    const report = evaluationFixture();
    (report.sections[0] as any).rows = [['only one cell'], ['a', 1, 2, 'extra']];
    const table = metricsTable(renderReport(report));
    expect(table.querySelectorAll('tbody tr')[0].querySelectorAll('td')).toHaveLength(3);
    expect(column(table, 2)).toEqual(['', '2']);
  });
});

describe('an invalid payload', () => {
  it.each([
    ['a string', 'not json'],
    ['null', null],
    ['undefined', undefined],
    ['a list', [1, 2]],
    ['a report missing its sections', { ...evaluationFixture(), sections: undefined }]
  ])('(%s) shows an error box and the JSON, without throwing', (_, payload) => {
    const root = renderReport(payload);
    expect(root.getAttribute(RENDERER_ATTRIBUTE)).toBe('lab');
    expect(root.classList).toContain('aimodel-report-invalid');
    const box = root.querySelector('.aimodel-error')!;
    expect(box.textContent).toMatch(/^This aimodel report could not be shown: /);
    expect(root.querySelector('pre.aimodel-json')).not.toBeNull();
    expect(root.querySelector('table')).toBeNull();
  });

  it('names the problem and keeps the payload readable', () => {
    const payload = { ...evaluationFixture(), status: 'fine' };
    const root = renderReport(payload);
    expect(root.querySelector('.aimodel-error')!.textContent).toContain(
      'status: not ok, warning or error'
    );
    expect(JSON.parse(root.querySelector('pre.aimodel-json')!.textContent!)).toEqual(payload);
  });
});
