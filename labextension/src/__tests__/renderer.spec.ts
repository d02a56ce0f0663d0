import type { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import extension, { ReportRenderer, rendererFactory } from '../renderer';
import { mimeTypeFor } from '../report';
import { evaluationFixture, PNG_1PX } from './fixtures';

function mimeModel(data: Record<string, unknown>): IRenderMime.IMimeModel {
  return { trusted: false, data: data as any, metadata: {}, setData: () => undefined };
}

describe('the MIME extension', () => {
  it('is a safe, rank-0 JSON renderer of every report kind', () => {
    expect(extension.id).toBe('aimodel-kernel:renderer');
    expect(extension.dataType).toBe('json');
    expect(extension.rank).toBe(0);
    expect(rendererFactory.safe).toBe(true);
    expect(rendererFactory.defaultRank).toBe(0);
    for (const kind of ['train', 'evaluation', 'versions', 'diff', 'reproduce', 'explain']) {
      expect(rendererFactory.mimeTypes).toContain(mimeTypeFor(kind));
    }
    for (const kind of ['fairness', 'compress', 'experiment', 'leaderboard']) {
      expect(rendererFactory.mimeTypes).toContain(mimeTypeFor(kind));
    }
  });

  it('renders its MIME type with the bundle PNG, even untrusted, and re-renders', async () => {
    const mimeType = mimeTypeFor('evaluation');
    const renderer = rendererFactory.createRenderer({
      mimeType,
      sanitizer: { sanitize: (s: string) => s },
      resolver: null,
      linkHandler: null,
      latexTypesetter: null
    } as any) as ReportRenderer;
    await renderer.renderModel(
      mimeModel({ [mimeType]: evaluationFixture(), 'image/png': PNG_1PX, 'text/html': '<b>x</b>' })
    );
    const root = renderer.node.querySelector('[data-aimodel-renderer="lab"]')!;
    expect(root.classList).toContain('aimodel-report-evaluation');
    expect(renderer.node.querySelectorAll('table.aimodel-table')).toHaveLength(2);
    expect(renderer.node.querySelector('.aimodel-section-plots img')).not.toBeNull();
    expect(renderer.node.querySelector('b')).toBeNull();

    await renderer.renderModel(mimeModel({ [mimeType]: { broken: true } }));
    expect(renderer.node.querySelectorAll('.aimodel-report')).toHaveLength(1);
    expect(renderer.node.querySelector('.aimodel-error')).not.toBeNull();
  });
});
