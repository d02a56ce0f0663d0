/**
 * The diff of two versions in a main-area tab, drawn by the same code as the MIME renderer.
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IDiffResponse, diffResponseErrors, isDiffResponse } from './apitypes';
import { element } from './dom';
import { renderReport } from './view';

let counter = 0;

/**
 * A main-area widget titled "Diff a ↔ b" that shows "Loading…", then the diff report, or the
 * server's error message, or what is wrong with an answer that is not a diff response.
 *
 * @param a - The first version (`name/1`).
 * @param b - The second version.
 * @param diff - The request for the diff report.
 */
export function createDiffWidget(
  a: string,
  b: string,
  diff: Promise<IDiffResponse>
): MainAreaWidget<Widget> {
  const content = new Widget();
  content.addClass('aimodel-diff-view');
  content.node.appendChild(element('div', 'aimodel-models-message', 'Loading…'));
  const widget = new MainAreaWidget({ content });
  widget.id = `aimodel-diff-${++counter}`;
  widget.title.label = `Diff ${a} ↔ ${b}`;
  widget.title.caption = `aimodel: what changed from ${a} to ${b}`;
  widget.title.closable = true;
  const showError = (message: string): void => {
    const box = element('div', 'aimodel-error', message);
    box.setAttribute('role', 'alert');
    content.node.replaceChildren(box);
  };
  diff.then(
    (response: unknown) => {
      if (isDiffResponse(response)) {
        content.node.replaceChildren(renderReport(response.payload, response.png));
      } else {
        const problems = diffResponseErrors(response);
        showError(
          'The server sent a diff this version of the extension cannot read: ' +
            problems.slice(0, 3).join('; ')
        );
      }
    },
    error => showError(String(error?.message ?? error))
  );
  return widget;
}
