/**
 * The Models panel icon (a stack of layers), drawn with the theme's icon colour.
 */
import { LabIcon } from '@jupyterlab/ui-components';

const MODELS_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2 2 7l10 5 10-5-10-5zm0 12.2L4.3 10.4 2 11.5l10 5 10-5-2.3-1.1L12 14.2z"/>
    <path d="M12 18.7 4.3 14.9 2 16l10 5 10-5-2.3-1.1L12 18.7z"/>
  </g>
</svg>`;

export const modelsIcon = new LabIcon({ name: 'aimodel-kernel:models', svgstr: MODELS_SVG });
