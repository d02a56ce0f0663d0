/**
 * A table section as DOM: sortable headers, compact numbers with full values in tooltips,
 * coloured rich cells and a copy button. Built with textContent only.
 */
import { cellStatus, cellText, cellValue, fullText, sortRows, tableTSV } from './format';
import { element } from './dom';
import { Cell, ITableSection } from './report';

/** Copy text to the clipboard; resolves to whether it worked. */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the selection-based copy (e.g. no clipboard permission)
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = typeof document.execCommand === 'function' && document.execCommand('copy');
  } finally {
    area.remove();
  }
  return ok;
}

function renderCell(cell: Cell | undefined, kind: string): HTMLTableCellElement {
  const td = element('td', `aimodel-cell aimodel-kind-${kind}`);
  const value = cellValue(cell);
  const text = cellText(cell);
  if (kind === 'code') {
    td.appendChild(element('code', undefined, text));
  } else {
    td.textContent = text;
  }
  const full = fullText(value);
  if (typeof value === 'number' || full !== text) {
    td.title = full;
  }
  if (typeof value === 'number') {
    td.classList.add('aimodel-number');
  }
  const status = cellStatus(cell);
  if (status) {
    td.classList.add(`aimodel-${status}`);
  }
  return td;
}

/**
 * The table of one section, inside its collapsible `<details>`.
 *
 * Clicking a header of a sortable table sorts by that column (ascending first, then toggling)
 * and sets `aria-sort`; "copy" copies the table as TSV, in the order shown, values in full.
 */
export function renderTable(section: ITableSection): HTMLDetailsElement {
  const details = element('details', 'aimodel-section aimodel-section-table');
  details.open = section.open;
  details.appendChild(element('summary', 'aimodel-section-title', section.title));

  const bar = element('div', 'aimodel-table-bar');
  const count = element(
    'span',
    'aimodel-table-count',
    `${section.rows.length} row${section.rows.length === 1 ? '' : 's'}`
  );
  const copy = element('button', 'aimodel-copy jp-mod-styled', 'copy');
  copy.type = 'button';
  copy.title = 'Copy the table as tab-separated values';
  bar.append(count, copy);
  details.appendChild(bar);

  const scroller = element('div', 'aimodel-table-scroll');
  const table = element('table', 'aimodel-table');
  const head = element('thead');
  const headRow = element('tr');
  const body = element('tbody');
  let order = section.rows.map((_, i) => i);
  let sortedBy = -1;
  let descending = false;

  const fillBody = (): void => {
    const rows = order.map(i => {
      const tr = element('tr');
      tr.dataset.row = String(i);
      section.columns.forEach((c, j) => tr.appendChild(renderCell(section.rows[i][j], c.kind)));
      return tr;
    });
    body.replaceChildren(...rows);
  };

  const headers = section.columns.map((column, j) => {
    const th = element('th', `aimodel-kind-${column.kind}`);
    th.scope = 'col';
    if (section.sortable) {
      const button = element('button', 'aimodel-sort', column.name);
      button.type = 'button';
      button.title = `Sort by ${column.name}`;
      th.appendChild(button);
      th.setAttribute('aria-sort', 'none');
      th.addEventListener('click', () => {
        descending = sortedBy === j ? !descending : false;
        sortedBy = j;
        order = sortRows(section.rows, j, descending);
        headers.forEach((h, k) =>
          h.setAttribute('aria-sort', k !== j ? 'none' : descending ? 'descending' : 'ascending')
        );
        fillBody();
      });
    } else {
      th.textContent = column.name;
    }
    return th;
  });
  headRow.append(...headers);
  head.appendChild(headRow);
  table.append(head, body);
  fillBody();
  scroller.appendChild(table);
  details.appendChild(scroller);

  copy.addEventListener('click', () => {
    void copyText(tableTSV(section.columns, section.rows, order)).then(ok => {
      copy.textContent = ok ? 'copied' : 'copy failed';
      window.setTimeout(() => (copy.textContent = 'copy'), 1500);
    });
  });
  return details;
}
