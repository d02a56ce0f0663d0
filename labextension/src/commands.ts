/**
 * Commands that insert aimodel magic cells, open the Models panel, and the notebook toolbar
 * menu that lists them. The palette, toolbar and cell context menu entries are wired in
 * `index.ts` and `schema/plugin.json`.
 */
import { NotebookActions, NotebookPanel, INotebookTracker } from '@jupyterlab/notebook';
import { ToolbarButton, caretDownIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Menu, Widget } from '@lumino/widgets';

/** Command ids. */
export namespace CommandIDs {
  export const insertTrain = 'aimodel:insert-train';
  export const insertEvaluate = 'aimodel:insert-evaluate';
  export const insertExplain = 'aimodel:insert-explain';
  export const insertFairness = 'aimodel:insert-fairness';
  export const insertCompress = 'aimodel:insert-compress';
  export const insertDiff = 'aimodel:insert-diff';
  export const openModels = 'aimodel:open-models';
}

/** A magic cell template inserted by a command. */
export interface ITemplate {
  command: string;
  label: string;
  caption: string;
  code: string;
}

/** The cells the insert commands write (edit the names to your variables). */
export const TEMPLATES: ITemplate[] = [
  {
    command: CommandIDs.insertTrain,
    label: 'Insert %train cell',
    caption: 'Train a model, track the run and register a version',
    code: '%train model X_train y_train --epochs 10 --name my-model'
  },
  {
    command: CommandIDs.insertEvaluate,
    label: 'Insert %evaluate cell',
    caption: 'Evaluate a model with confidence intervals',
    code: '%evaluate model X_test y_test --ci'
  },
  {
    command: CommandIDs.insertExplain,
    label: 'Insert %explain cell',
    caption: 'Explain predictions (SHAP)',
    code: '%explain model X_test'
  },
  {
    command: CommandIDs.insertFairness,
    label: 'Insert %fairness cell',
    caption: 'Audit fairness across a sensitive feature',
    code: '%fairness model X_test y_test --sensitive group'
  },
  {
    command: CommandIDs.insertCompress,
    label: 'Insert %compress cell',
    caption: 'Quantize and export to ONNX',
    code: '%compress model --quantize int8 --onnx'
  }
];

/** The `%diff` line of two versions. */
export function diffLine(a: string, b: string): string {
  return `%diff ${a} ${b}`;
}

/**
 * Insert a code cell holding `code` below the active cell of a notebook and make it active.
 *
 * @param panel - The notebook panel.
 * @param code - The cell's source.
 */
export function insertCodeBelow(panel: NotebookPanel, code: string): void {
  const notebook = panel.content;
  NotebookActions.insertBelow(notebook);
  if (notebook.activeCell?.model.type !== 'code') {
    NotebookActions.changeCellType(notebook, 'code');
  }
  notebook.activeCell?.model.sharedModel.setSource(code);
}

/** What the commands need from the application. */
export interface ICommandsOptions {
  commands: CommandRegistry;
  tracker: INotebookTracker;
  /** Show the Models panel. */
  openModels: () => void;
  /** The two versions selected in the Models panel, if any. */
  selectedPair: () => [string, string] | null;
}

/** Register every aimodel command. */
export function registerCommands(options: ICommandsOptions): void {
  const { commands, tracker } = options;
  const hasNotebook = (): boolean => tracker.currentWidget !== null;
  const insert = (code: string): void => {
    const panel = tracker.currentWidget;
    if (panel) {
      insertCodeBelow(panel, code);
    }
  };

  for (const template of TEMPLATES) {
    commands.addCommand(template.command, {
      label: template.label,
      caption: template.caption,
      isEnabled: hasNotebook,
      execute: () => insert(template.code)
    });
  }

  commands.addCommand(CommandIDs.insertDiff, {
    label: 'Insert %diff cell',
    caption: 'Compare two model versions (the two selected in the Models panel, if any)',
    isEnabled: hasNotebook,
    execute: (args: ReadonlyPartialJSONObject) => {
      const given =
        typeof args.a === 'string' && typeof args.b === 'string'
          ? ([args.a, args.b] as [string, string])
          : null;
      const [a, b] = given ?? options.selectedPair() ?? ['my-model/1', 'my-model/2'];
      insert(diffLine(a, b));
    }
  });

  commands.addCommand(CommandIDs.openModels, {
    label: 'Show Models panel',
    caption: 'Registered models and versions of the current notebook’s store',
    execute: () => options.openModels()
  });
}

/** Commands in the notebook toolbar's aimodel menu, in order (`null`: a separator). */
export const MENU_COMMANDS: (string | null)[] = [
  ...TEMPLATES.map(t => t.command),
  null,
  CommandIDs.insertDiff,
  CommandIDs.openModels
];

/** The menu the toolbar button opens. */
export function createMenu(commands: CommandRegistry): Menu {
  const menu = new Menu({ commands });
  menu.addClass('aimodel-menu');
  menu.title.label = 'aimodel';
  for (const command of MENU_COMMANDS) {
    menu.addItem(command === null ? { type: 'separator' } : { command });
  }
  return menu;
}

/** The notebook toolbar item: an "aimodel" button that opens the menu below itself. */
export function createToolbarItem(menu: Menu): Widget {
  const button: ToolbarButton = new ToolbarButton({
    label: 'aimodel',
    icon: caretDownIcon,
    tooltip: 'Insert an aimodel magic cell',
    className: 'aimodel-toolbar-button',
    onClick: () => {
      const rect = button.node.getBoundingClientRect();
      menu.open(rect.left, rect.bottom);
    }
  });
  return button;
}
