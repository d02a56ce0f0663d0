/**
 * Tokens through which the aimodel plugins share their services.
 */
import { Token } from '@lumino/coreutils';

import type { ModelsPanel } from './sidebar';
import type { TrainingStatus } from './status';

/** The training state pushed by kernels over the `aimodel.status` comm. */
export const ITrainingStatus = new Token<TrainingStatus>(
  'aimodel-kernel:ITrainingStatus',
  'Training progress of every kernel, and a signal when a training ends.'
);

/** The Models side panel. */
export const IModelsSidebar = new Token<ModelsPanel>(
  'aimodel-kernel:IModelsSidebar',
  'The Models panel and its selected versions.'
);
