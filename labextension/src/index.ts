/**
 * The JupyterLab plugins of aimodel-kernel. The report renderer is the package's separate
 * MIME extension (`renderer.ts`).
 *
 * - `aimodel-kernel:status`: the `aimodel.status` comm on every notebook kernel, the status bar
 *   training indicator.
 * - `aimodel-kernel:models`: the Models side panel and the diff tab.
 * - `aimodel-kernel:plugin`: commands, palette, notebook toolbar menu; its settings schema
 *   (`schema/plugin.json`) declares the toolbar item and the cell context submenu.
 * - `aimodel-kernel:highlight`: highlighting of magic lines in code editors.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, IToolbarWidgetRegistry } from '@jupyterlab/apputils';
import { EditorExtensionRegistry, IEditorExtensionRegistry } from '@jupyterlab/codemirror';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { IStatusBar } from '@jupyterlab/statusbar';

import { fetchDiff, fetchModels } from './api';
import { CommandIDs, TEMPLATES, createMenu, createToolbarItem, registerCommands } from './commands';
import { createDiffWidget } from './diffview';
import { aimodelMagics } from './highlight';
import { modelsIcon } from './icons';
import { ModelsPanel } from './sidebar';
import { COMM_TARGET, TrainingStatus, TrainingStatusWidget } from './status';
import { IModelsSidebar, ITrainingStatus } from './tokens';

/** The directory of a notebook relative to the server root ('' for the root). */
export function notebookDirectory(panel: NotebookPanel | null): string | null {
  if (!panel) {
    return null;
  }
  const path = panel.context.localPath;
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

const statusPlugin: JupyterFrontEndPlugin<TrainingStatus> = {
  id: 'aimodel-kernel:status',
  description: 'Shows %train progress pushed by the kernel over the aimodel.status comm.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IStatusBar],
  provides: ITrainingStatus,
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    statusBar: IStatusBar | null
  ): TrainingStatus => {
    const status = new TrainingStatus();
    const watched = new WeakSet<Kernel.IKernelConnection>();
    const watch = (kernel: Kernel.IKernelConnection | null | undefined): void => {
      if (!kernel || watched.has(kernel)) {
        return;
      }
      watched.add(kernel);
      kernel.registerCommTarget(COMM_TARGET, (comm, msg) => status.follow(kernel.id, comm, msg));
      kernel.statusChanged.connect((_, state) => {
        if (state === 'restarting' || state === 'autorestarting' || state === 'dead') {
          status.clear(kernel.id);
        }
      });
    };

    const item = new TrainingStatusWidget(status);
    const showCurrent = (): void => {
      item.kernelId = tracker.currentWidget?.sessionContext.session?.kernel?.id ?? null;
    };
    const track = (panel: NotebookPanel): void => {
      const context = panel.sessionContext;
      watch(context.session?.kernel);
      context.kernelChanged.connect((_, change) => {
        watch(change.newValue);
        showCurrent();
      });
    };
    tracker.forEach(track);
    tracker.widgetAdded.connect((_, panel) => track(panel));
    tracker.currentChanged.connect(showCurrent);
    showCurrent();

    if (statusBar) {
      statusBar.registerStatusItem('aimodel:training', {
        item,
        align: 'left',
        rank: 5,
        isActive: () => item.isActive,
        activeStateChanged: item.activeStateChanged
      });
    }
    return status;
  }
};

const modelsPlugin: JupyterFrontEndPlugin<ModelsPanel> = {
  id: 'aimodel-kernel:models',
  description: 'The Models side panel: registered versions of the notebook’s store, diffs.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer, ITrainingStatus],
  provides: IModelsSidebar,
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    status: TrainingStatus | null
  ): ModelsPanel => {
    const settings = app.serviceManager.serverSettings;
    const panel = new ModelsPanel({
      fetchModels: dir => fetchModels(dir, settings),
      openDiff: (dir, a, b) => {
        const widget = createDiffWidget(a, b, fetchDiff(dir, a, b, settings));
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
      },
      insertDiff: (a, b) => void app.commands.execute(CommandIDs.insertDiff, { a, b })
    });
    panel.title.icon = modelsIcon;
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, 'aimodel-models');

    const follow = (): void => void panel.setDirectory(notebookDirectory(tracker.currentWidget));
    tracker.currentChanged.connect(follow);
    tracker.widgetAdded.connect((_, nb) =>
      nb.context.pathChanged.connect(() => {
        if (nb === tracker.currentWidget) {
          follow();
        }
      })
    );
    status?.trainingEnded.connect(() => void panel.refreshIfVisible());
    void app.restored.then(follow);
    return panel;
  }
};

const commandsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'aimodel-kernel:plugin',
  description: 'aimodel commands in the palette, the notebook toolbar and the cell menu.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, IToolbarWidgetRegistry, IModelsSidebar],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    toolbarRegistry: IToolbarWidgetRegistry | null,
    sidebar: ModelsPanel | null
  ): void => {
    registerCommands({
      commands: app.commands,
      tracker,
      openModels: () => app.shell.activateById('aimodel-models'),
      selectedPair: () => sidebar?.selectedPair ?? null
    });
    if (palette) {
      const category = 'aimodel';
      for (const template of TEMPLATES) {
        palette.addItem({ command: template.command, category });
      }
      palette.addItem({ command: CommandIDs.insertDiff, category });
      palette.addItem({ command: CommandIDs.openModels, category });
    }
    if (toolbarRegistry) {
      const menu = createMenu(app.commands);
      toolbarRegistry.addFactory('Notebook', 'aimodel', () => createToolbarItem(menu));
    }
  }
};

const highlightPlugin: JupyterFrontEndPlugin<void> = {
  id: 'aimodel-kernel:highlight',
  description: 'Highlights aimodel magic names, flags and version references in code cells.',
  autoStart: true,
  requires: [IEditorExtensionRegistry],
  activate: (app: JupyterFrontEnd, registry: IEditorExtensionRegistry): void => {
    registry.addExtension({
      name: 'aimodel-kernel:magics',
      factory: options =>
        /markdown|gfm/i.test(options.model.mimeType)
          ? null
          : EditorExtensionRegistry.createImmutableExtension(aimodelMagics())
    });
  }
};

export default [statusPlugin, modelsPlugin, commandsPlugin, highlightPlugin];
