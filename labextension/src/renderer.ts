/**
 * The MIME renderer extension for `application/vnd.aimodel.<kind>.v1+json` outputs.
 *
 * Rank 0 puts it ahead of the `text/html` fallback the same bundle carries; `safe: true`
 * because it builds DOM from text only (no payload HTML), so it also renders in untrusted
 * notebooks. The bundle's `image/png` is shown inside the report as its "Plots" section.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { REPORT_MIME_TYPES } from './report';
import { renderReport } from './view';

/** A widget that renders one report output. */
export class ReportRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass('aimodel-report-output');
  }

  /** Render the model's payload, replacing what was shown before. */
  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const payload = model.data[this._mimeType];
    this.node.replaceChildren(renderReport(payload, model.data['image/png']));
    return Promise.resolve();
  }

  private _mimeType: string;
}

/** The factory of report renderers. */
export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: REPORT_MIME_TYPES,
  defaultRank: 0,
  createRenderer: options => new ReportRenderer(options)
};

/** The MIME extension (the package's `jupyterlab.mimeExtension` entry). */
const extension: IRenderMime.IExtension = {
  id: 'aimodel-kernel:renderer',
  description: 'Renders aimodel-kernel reports (train, evaluation, diff, ...).',
  rendererFactory,
  rank: 0,
  dataType: 'json'
};

export default extension;
