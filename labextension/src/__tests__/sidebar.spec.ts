import { Widget } from '@lumino/widgets';

import type { IModelsResponse } from '../api';
import { isModelsResponse } from '../apitypes';
import { ModelsPanel, diffPair, headlineMetrics } from '../sidebar';
import { apiExample } from './fixtures';

function models(): IModelsResponse {
  const version = (name: string, v: number, extra: object = {}) => ({
    ref: `${name}/${v}`,
    version: v,
    aliases: [] as string[],
    created: '2025-03-04T05:06:07Z',
    parent: v > 1 ? `${name}/${v - 1}` : null,
    model_type: 'LogisticRegression',
    task: 'binary',
    classes: 2,
    metrics: { val_accuracy: 0.9734, val_f1: 0.961, loss: 0.08, auc: 0.99 },
    run_id: `run${v}`,
    status: 'READY',
    ...extra
  });
  return {
    store: { uri: 'sqlite:////home/u/.aimodel/mlflow.db', embedded: true },
    models: [
      {
        name: 'cancer-lr',
        versions: [
          version('cancer-lr', 3, { aliases: ['champion', 'prod'] }),
          version('cancer-lr', 2),
          version('cancer-lr', 1, { status: 'FAILED' })
        ]
      },
      { name: 'digits-mlp', versions: [version('digits-mlp', 1)] }
    ]
  };
}

interface IHarness {
  panel: ModelsPanel;
  fetched: string[];
  opened: string[][];
  inserted: string[][];
}

function harness(fetch?: (dir: string) => Promise<IModelsResponse>): IHarness {
  const h: IHarness = { fetched: [], opened: [], inserted: [], panel: null as any };
  h.panel = new ModelsPanel({
    fetchModels: dir => {
      h.fetched.push(dir);
      return fetch ? fetch(dir) : Promise.resolve(models());
    },
    openDiff: (dir, a, b) => h.opened.push([dir, a, b]),
    insertDiff: (a, b) => h.inserted.push([a, b])
  });
  Widget.attach(h.panel, document.body);
  return h;
}

function q<T extends Element = HTMLElement>(panel: ModelsPanel, selector: string): T {
  return panel.node.querySelector(selector) as T;
}

function check(panel: ModelsPanel, ref: string): void {
  const box = q<HTMLInputElement>(panel, `li.aimodel-version[data-ref="${ref}"] input`);
  box.checked = !box.checked;
  box.dispatchEvent(new Event('change'));
}

describe('ModelsPanel', () => {
  afterEach(() => {
    document.body.replaceChildren();
  });

  it('asks for a notebook before anything is open', () => {
    const { panel, fetched } = harness();
    expect(panel.id).toBe('aimodel-models');
    expect(panel.title.label).toBe('Models');
    expect(fetched).toEqual([]);
    expect(q(panel, '.aimodel-models-message').textContent).toMatch(/Open a notebook/);
  });

  it('lists models and versions of the notebook directory', async () => {
    const { panel, fetched } = harness();
    await panel.setDirectory('projects/cancer');
    expect(fetched).toEqual(['projects/cancer']);
    const refs = [...panel.node.querySelectorAll<HTMLElement>('li.aimodel-version')].map(
      li => li.dataset.ref
    );
    expect(refs).toEqual(['cancer-lr/3', 'cancer-lr/2', 'cancer-lr/1', 'digits-mlp/1']);
    const row = q(panel, 'li.aimodel-version[data-ref="cancer-lr/3"]');
    expect([...row.querySelectorAll('.aimodel-chip')].map(c => c.textContent)).toEqual([
      'champion',
      'prod'
    ]);
    expect(row.querySelector('.aimodel-version-metrics')!.textContent).toBe(
      'val_accuracy 0.9734 · val_f1 0.961 · loss 0.08'
    );
    expect(row.querySelector('.aimodel-version-parent')!.textContent).toBe('from cancer-lr/2');
    expect(row.querySelector('time')!.getAttribute('datetime')).toBe('2025-03-04T05:06:07Z');
    expect(q(panel, 'li.aimodel-version[data-ref="cancer-lr/1"] .aimodel-version-parent')).toBeNull();
    expect(q(panel, 'li.aimodel-version[data-ref="cancer-lr/1"] .aimodel-chip').textContent).toBe(
      'FAILED'
    );
    expect(q(panel, '.aimodel-models-store').textContent).toBe(
      'embedded store: sqlite:////home/u/.aimodel/mlflow.db'
    );
    await panel.setDirectory('projects/cancer');
    expect(fetched).toHaveLength(1);
  });

  it('enables the diff buttons for exactly two versions, older first', async () => {
    const { panel, opened, inserted } = harness();
    await panel.setDirectory('');
    const open = q<HTMLButtonElement>(panel, 'button[data-action="open-diff"]');
    const insert = q<HTMLButtonElement>(panel, 'button[data-action="insert-diff"]');
    expect(open.disabled).toBe(true);
    check(panel, 'cancer-lr/3');
    expect(open.disabled).toBe(true);
    check(panel, 'cancer-lr/1');
    expect(open.disabled).toBe(false);
    expect(insert.disabled).toBe(false);
    expect(q(panel, '.aimodel-models-selection').textContent).toBe('cancer-lr/1 ↔ cancer-lr/3');
    open.click();
    insert.click();
    expect(opened).toEqual([['', 'cancer-lr/1', 'cancer-lr/3']]);
    expect(inserted).toEqual([['cancer-lr/1', 'cancer-lr/3']]);
    check(panel, 'digits-mlp/1');
    expect(open.disabled).toBe(true);
    expect(q(panel, '.aimodel-models-selection').textContent).toMatch(/3 selected/);
  });

  it('keeps the selection across a refresh when the versions still exist', async () => {
    const { panel } = harness();
    await panel.setDirectory('');
    check(panel, 'cancer-lr/2');
    check(panel, 'digits-mlp/1');
    await panel.refresh();
    expect(panel.selectedPair).toEqual(['cancer-lr/2', 'digits-mlp/1']);
    expect(
      q<HTMLInputElement>(panel, 'li.aimodel-version[data-ref="cancer-lr/2"] input').checked
    ).toBe(true);
    expect(q<HTMLButtonElement>(panel, 'button[data-action="open-diff"]').disabled).toBe(false);
  });

  it('shows the server message on an error and recovers on refresh', async () => {
    let fail = true;
    const { panel, fetched } = harness(() =>
      fail
        ? Promise.reject(new Error('no tracking store in projects: run %train first'))
        : Promise.resolve(models())
    );
    await panel.setDirectory('projects');
    const message = q(panel, '.aimodel-models-message');
    expect(message.textContent).toBe('no tracking store in projects: run %train first');
    expect(message.classList).toContain('aimodel-error');
    expect(panel.node.querySelectorAll('li.aimodel-version')).toHaveLength(0);
    fail = false;
    q<HTMLButtonElement>(panel, 'button[data-action="refresh"]').click();
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(fetched).toEqual(['projects', 'projects']);
    expect(message.hidden).toBe(true);
    expect(panel.node.querySelectorAll('li.aimodel-version')).toHaveLength(4);
  });

  it('shows an error instead of an answer that is not a models listing', async () => {
    let broken: any = { store: { uri: 'x', embedded: true }, models: [{ name: 'm' }] };
    const { panel } = harness(() => Promise.resolve(broken));
    await panel.setDirectory('projects');
    const message = q(panel, '.aimodel-models-message');
    expect(message.classList).toContain('aimodel-error');
    expect(message.textContent).toMatch(/cannot read: models\[0\]: missing "versions"/);
    expect(panel.node.querySelectorAll('li.aimodel-model')).toHaveLength(0);
    broken = 'not JSON at all';
    await panel.refresh();
    expect(message.textContent).toMatch(/models response: not an object/);
    broken = models();
    (broken.models[0].versions[0] as any).classes = '2';
    delete (broken.models[0].versions[1] as any).run_id;
    broken.models[1].versions[0].metrics = null;
    broken.models[1].versions[0].extra = 1;
    await panel.refresh();
    expect(message.textContent).toMatch(/classes: not an integer.*\(and \d+ more\)$/);
    broken = models();
    await panel.refresh();
    expect(message.hidden).toBe(true);
    expect(panel.node.querySelectorAll('li.aimodel-version')).toHaveLength(4);
  });

  it('lists the generated example of docs/api-examples', async () => {
    const example = apiExample('models');
    expect(isModelsResponse(example)).toBe(true);
    const { panel } = harness(() => Promise.resolve(example));
    await panel.setDirectory('proj');
    const refs = [...panel.node.querySelectorAll<HTMLElement>('li.aimodel-version')].map(
      li => li.dataset.ref
    );
    expect(refs).toEqual(['cancer-lr/2', 'cancer-lr/1', 'iris-tree/1']);
    expect(q(panel, '.aimodel-models-message').hidden).toBe(true);
    const tree = q(panel, 'li.aimodel-version[data-ref="iris-tree/1"]');
    expect(tree.querySelector('.aimodel-version-type')!.textContent).toBe(
      'DecisionTreeClassifier, multiclass'
    );
  });

  it('drops answers to earlier requests', async () => {
    const pending: ((r: IModelsResponse) => void)[] = [];
    const { panel } = harness(() => new Promise(resolve => pending.push(resolve)));
    const first = panel.setDirectory('a');
    const second = panel.setDirectory('b');
    const late = models();
    late.models = [];
    pending[1](models());
    await second;
    pending[0](late);
    await first;
    expect(panel.node.querySelectorAll('li.aimodel-version')).toHaveLength(4);
  });

  it('waits until it is shown when hidden', async () => {
    const { panel, fetched } = harness();
    panel.hide();
    await panel.setDirectory('x');
    expect(fetched).toEqual([]);
    panel.show();
    await new Promise(resolve => setTimeout(resolve, 0));
    expect(fetched).toEqual(['x']);
  });
});

describe('helpers', () => {
  it('orders a pair of one model by version', () => {
    const v = (ref: string, version: number) => ({ ref, version }) as any;
    expect(diffPair([v('m/5', 5), v('m/2', 2)])).toEqual(['m/2', 'm/5']);
    expect(diffPair([v('m/5', 5), v('n/2', 2)])).toEqual(['m/5', 'n/2']);
    expect(diffPair([v('m/5', 5)])).toBeNull();
  });

  it('shows the first three metrics', () => {
    expect(headlineMetrics({ a: 1, b: 0.123456, c: 3, d: 4 })).toBe('a 1 · b 0.1235 · c 3');
    expect(headlineMetrics({})).toBe('');
    expect(headlineMetrics({ val_loss: null, loss: 0.5 })).toBe('val_loss n/a · loss 0.5');
  });
});
