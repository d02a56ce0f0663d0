/**
 * The Models side panel: registered models and versions of the store the current notebook's
 * kernel uses, with a two-version selection to diff.
 *
 * The panel knows nothing of JupyterLab's shell or notebooks: the plugin gives it a way to
 * fetch the models of a directory and what to do with a selected pair (see `index.ts`).
 */
import { Widget } from '@lumino/widgets';

import {
  IModelInfo,
  IModelsResponse,
  IVersionInfo,
  isModelsResponse,
  modelsResponseErrors
} from './apitypes';
import { element } from './dom';
import { formatNumber } from './format';

/** What the panel needs from its host. */
export interface IModelsPanelOptions {
  /** The models of the store used by notebooks in `dir`. */
  fetchModels: (dir: string) => Promise<IModelsResponse>;
  /** Open the diff of two versions (older first when they are versions of one model). */
  openDiff: (dir: string, a: string, b: string) => void;
  /** Insert `%diff a b` into the current notebook. */
  insertDiff: (a: string, b: string) => void;
}

/** How many metrics a version row shows. */
const HEADLINE_METRICS = 3;

/** Version statuses not worth a chip (anything else, e.g. FAILED, is shown). */
const QUIET_STATUSES = ['READY', 'FINISHED'];

/** How many of an invalid answer's problems the panel names. */
const SHOWN_PROBLEMS = 3;

function errorMessage(error: unknown): string {
  if (error && typeof error === 'object' && 'message' in error) {
    return String((error as { message: unknown }).message);
  }
  return String(error);
}

/** `2024-05-01T10:20:30Z` as a short local date and time, or the input when unparsable. */
export function formatCreated(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  const pad = (n: number): string => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/**
 * The first few metrics of a version, e.g. `val_accuracy 0.97 · loss 0.08`; `n/a` for a
 * metric the server sent as `null` (NaN or infinite).
 */
export function headlineMetrics(metrics: Record<string, number | null>): string {
  return Object.entries(metrics ?? {})
    .slice(0, HEADLINE_METRICS)
    .map(([name, value]) => `${name} ${typeof value === 'number' ? formatNumber(value) : 'n/a'}`)
    .join(' · ');
}

/**
 * The message shown for an answer that is not a models listing (see `apitypes.ts`).
 *
 * @param problems - What `modelsResponseErrors` found, not empty.
 */
export function invalidAnswerMessage(problems: string[]): string {
  const hidden = problems.length - SHOWN_PROBLEMS;
  const more = hidden > 0 ? ` (and ${hidden} more)` : '';
  return (
    'The server sent a models listing this version of the extension cannot read: ' +
    problems.slice(0, SHOWN_PROBLEMS).join('; ') +
    more
  );
}

/**
 * The pair to diff, older first when both are versions of one model, else in selection order.
 */
export function diffPair(selected: IVersionInfo[]): [string, string] | null {
  if (selected.length !== 2) {
    return null;
  }
  const [a, b] = selected;
  const sameModel = a.ref.split('/')[0] === b.ref.split('/')[0];
  return sameModel && a.version > b.version ? [b.ref, a.ref] : [a.ref, b.ref];
}

/** The Models panel (id `aimodel-models`). */
export class ModelsPanel extends Widget {
  constructor(options: IModelsPanelOptions) {
    super();
    this._options = options;
    this.id = 'aimodel-models';
    this.title.label = 'Models';
    this.title.caption = 'aimodel: registered models';
    this.addClass('aimodel-models');

    const header = element('div', 'aimodel-models-header');
    header.appendChild(element('span', 'aimodel-models-heading', 'Models'));
    this._refreshButton = this._button('refresh', '⟳', 'Refresh the list of models');
    this._refreshButton.addEventListener('click', () => void this.refresh());
    header.appendChild(this._refreshButton);

    this._store = element('div', 'aimodel-models-store');
    this._message = element('div', 'aimodel-models-message');
    this._message.setAttribute('role', 'status');
    this._list = element('ul', 'aimodel-model-list');

    const footer = element('div', 'aimodel-models-footer');
    this._selectionLabel = element('div', 'aimodel-models-selection');
    this._openButton = this._button('open-diff', 'Open diff', 'Compare the two selected versions');
    this._insertButton = this._button(
      'insert-diff',
      'Insert %diff cell',
      'Insert a %diff cell for the two selected versions below the active cell'
    );
    this._openButton.addEventListener('click', () => {
      const pair = this.selectedPair;
      if (pair && this._dir !== null) {
        this._options.openDiff(this._dir, pair[0], pair[1]);
      }
    });
    this._insertButton.addEventListener('click', () => {
      const pair = this.selectedPair;
      if (pair) {
        this._options.insertDiff(pair[0], pair[1]);
      }
    });
    const buttons = element('div', 'aimodel-models-buttons');
    buttons.append(this._openButton, this._insertButton);
    footer.append(this._selectionLabel, buttons);

    this.node.append(header, this._store, this._message, this._list, footer);
    this.setDirectory(null);
  }

  /** The notebook directory whose store is shown (`null`: no notebook). */
  get directory(): string | null {
    return this._dir;
  }

  /** The selected versions, in the order they were selected. */
  get selected(): IVersionInfo[] {
    return this._selected
      .map(ref => this._versions.get(ref))
      .filter((v): v is IVersionInfo => v !== undefined);
  }

  /** The pair "Open diff" and "Insert %diff cell" act on, when exactly two are selected. */
  get selectedPair(): [string, string] | null {
    return diffPair(this.selected);
  }

  /**
   * Show the store of notebooks in `dir`. Fetches when the directory changed, at once if the
   * panel is visible, else when it is next shown.
   */
  setDirectory(dir: string | null): Promise<void> {
    if (dir === this._dir && (this._loaded || this._stale)) {
      return Promise.resolve();
    }
    this._dir = dir;
    return this.refreshIfVisible();
  }

  /** Refresh now if the panel is visible; otherwise when it is next shown. */
  refreshIfVisible(): Promise<void> {
    if (this.isVisible || this._dir === null) {
      return this.refresh();
    }
    this._stale = true;
    return Promise.resolve();
  }

  protected onAfterShow(): void {
    if (this._stale) {
      void this.refresh();
    }
  }

  /** Fetch the models again (answers to earlier requests are dropped). */
  async refresh(): Promise<void> {
    const token = ++this._request;
    const dir = this._dir;
    this._stale = false;
    if (dir === null) {
      this._loaded = false;
      this._render(null);
      this._setMessage('Open a notebook to see the models of its store.');
      return;
    }
    this._refreshButton.disabled = true;
    this.node.classList.add('aimodel-loading');
    this._setMessage('Loading…');
    try {
      const data: unknown = await this._options.fetchModels(dir);
      if (token !== this._request) {
        return;
      }
      if (!isModelsResponse(data)) {
        throw new Error(invalidAnswerMessage(modelsResponseErrors(data)));
      }
      this._loaded = true;
      this._render(data);
      this._setMessage(
        data.models.length === 0 ? 'No registered models yet: %train one with --name.' : ''
      );
    } catch (error) {
      if (token !== this._request) {
        return;
      }
      this._loaded = false;
      this._render(null);
      this._setMessage(errorMessage(error), true);
    } finally {
      if (token === this._request) {
        this._refreshButton.disabled = false;
        this.node.classList.remove('aimodel-loading');
      }
    }
  }

  private _button(action: string, label: string, title: string): HTMLButtonElement {
    const button = element('button', 'aimodel-button jp-mod-styled', label);
    button.type = 'button';
    button.title = title;
    button.dataset.action = action;
    return button;
  }

  private _setMessage(text: string, error = false): void {
    this._message.textContent = text;
    this._message.classList.toggle('aimodel-error', error);
    this._message.hidden = text === '';
  }

  private _render(data: IModelsResponse | null): void {
    this._versions.clear();
    if (data === null) {
      this._store.textContent = '';
      this._store.hidden = true;
      this._list.replaceChildren();
    } else {
      this._store.hidden = false;
      this._store.textContent = `${data.store.embedded ? 'embedded store' : 'store'}: ${
        data.store.uri
      }`;
      this._store.title = data.store.uri;
      this._list.replaceChildren(...data.models.map(m => this._renderModel(m)));
    }
    this._selected = this._selected.filter(ref => this._versions.has(ref));
    for (const box of this._list.querySelectorAll<HTMLInputElement>('input[type=checkbox]')) {
      box.checked = this._selected.includes(box.value);
    }
    this._updateSelection();
  }

  private _renderModel(model: IModelInfo): HTMLLIElement {
    const item = element('li', 'aimodel-model');
    item.dataset.model = model.name;
    const details = element('details');
    details.open = true;
    const summary = element('summary', 'aimodel-model-name', model.name);
    summary.appendChild(
      element('span', 'aimodel-model-count', ` (${model.versions.length})`)
    );
    details.appendChild(summary);
    const versions = element('ul', 'aimodel-version-list');
    versions.append(...model.versions.map(v => this._renderVersion(v)));
    details.appendChild(versions);
    item.appendChild(details);
    return item;
  }

  private _renderVersion(version: IVersionInfo): HTMLLIElement {
    this._versions.set(version.ref, version);
    const row = element('li', 'aimodel-version');
    row.dataset.ref = version.ref;
    const label = element('label', 'aimodel-version-main');
    const box = element('input');
    box.type = 'checkbox';
    box.value = version.ref;
    box.addEventListener('change', () => this._toggle(version.ref, box.checked));
    label.append(box, element('span', 'aimodel-version-ref', version.ref));
    for (const alias of version.aliases ?? []) {
      label.appendChild(element('span', 'aimodel-chip', alias));
    }
    if (version.status && !QUIET_STATUSES.includes(version.status)) {
      label.appendChild(element('span', 'aimodel-chip aimodel-chip-status', version.status));
    }
    row.appendChild(label);
    const metrics = headlineMetrics(version.metrics);
    if (metrics) {
      row.appendChild(element('div', 'aimodel-version-metrics', metrics));
    }
    const facts = element('div', 'aimodel-version-facts');
    const kind = [version.model_type, version.task].filter(Boolean).join(', ');
    if (kind) {
      facts.appendChild(element('span', 'aimodel-version-type', kind));
    }
    if (version.parent) {
      facts.appendChild(element('span', 'aimodel-version-parent', `from ${version.parent}`));
    }
    const created = element('time', 'aimodel-version-created', formatCreated(version.created));
    created.dateTime = version.created;
    created.title = version.created;
    facts.appendChild(created);
    row.appendChild(facts);
    return row;
  }

  private _toggle(ref: string, on: boolean): void {
    this._selected = this._selected.filter(r => r !== ref);
    if (on) {
      this._selected.push(ref);
    }
    this._updateSelection();
  }

  private _updateSelection(): void {
    const count = this._selected.length;
    const pair = this.selectedPair;
    this._openButton.disabled = pair === null;
    this._insertButton.disabled = pair === null;
    for (const row of this._list.querySelectorAll<HTMLElement>('li.aimodel-version')) {
      row.classList.toggle('aimodel-selected', this._selected.includes(row.dataset.ref ?? ''));
    }
    this._selectionLabel.textContent = pair
      ? `${pair[0]} ↔ ${pair[1]}`
      : count > 2
        ? `${count} selected: select exactly two to compare`
        : 'Select two versions to compare';
  }

  private _options: IModelsPanelOptions;
  private _dir: string | null = null;
  private _loaded = false;
  private _stale = false;
  private _request = 0;
  private _selected: string[] = [];
  private _versions = new Map<string, IVersionInfo>();
  private _refreshButton: HTMLButtonElement;
  private _openButton: HTMLButtonElement;
  private _insertButton: HTMLButtonElement;
  private _store: HTMLDivElement;
  private _message: HTMLDivElement;
  private _list: HTMLUListElement;
  private _selectionLabel: HTMLDivElement;
}
