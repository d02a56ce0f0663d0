import { ITrainingEnded, TrainingStatus, TrainingStatusWidget, formatEta, formatStatus, parseStatusMessage } from '../status';

const start = {
  event: 'start',
  run: 'abc123',
  epoch: 0,
  epochs: 10,
  fraction: 0,
  eta_seconds: null,
  line: '%train net X y --epochs 10',
  status: 'RUNNING'
};
const progress = { ...start, event: 'progress', epoch: 3, fraction: 0.3, eta_seconds: 12.4 };
const end = { ...start, event: 'end', epoch: 10, fraction: 1, eta_seconds: 0, status: 'FINISHED' };

describe('formatting', () => {
  it('writes the ETA as m:ss or h:mm:ss', () => {
    expect(formatEta(12.4)).toBe('0:12');
    expect(formatEta(75)).toBe('1:15');
    expect(formatEta(3725)).toBe('1:02:05');
    expect(formatEta(-3)).toBe('0:00');
  });

  it('writes the status line', () => {
    expect(formatStatus(parseStatusMessage(progress)!)).toBe('⏳ aimodel: epoch 3/10 · ETA 0:12');
    expect(formatStatus(parseStatusMessage(start)!)).toBe('⏳ aimodel: epoch 0/10');
    expect(formatStatus(parseStatusMessage({ ...progress, epochs: 0 })!)).toBe(
      '⏳ aimodel: 30% · ETA 0:12'
    );
    expect(formatStatus(parseStatusMessage(end)!)).toBe('✓ aimodel: finished');
    expect(formatStatus(parseStatusMessage({ ...end, status: 'KILLED' })!)).toBe(
      '■ aimodel: stopped'
    );
    expect(formatStatus(parseStatusMessage({ ...end, status: 'FAILED' })!)).toBe(
      '✗ aimodel: failed'
    );
  });

  it('rejects payloads that are not status messages', () => {
    expect(parseStatusMessage(null)).toBeNull();
    expect(parseStatusMessage({ event: 'tick' })).toBeNull();
    expect(parseStatusMessage({ event: 'progress', fraction: 7, eta_seconds: 'soon' })).toEqual(
      expect.objectContaining({ fraction: 1, eta_seconds: null, epochs: 0 })
    );
  });
});

describe('TrainingStatus and its status bar item', () => {
  it('follows the current kernel and lingers after the end', async () => {
    const status = new TrainingStatus(30);
    const widget = new TrainingStatusWidget(status);
    const ended: ITrainingEnded[] = [];
    let toggles = 0;
    status.trainingEnded.connect((_, e) => ended.push(e));
    widget.activeStateChanged.connect(() => toggles++);
    expect(widget.node.classList).toContain('aimodel-status');

    status.update('k1', start);
    expect(widget.isActive).toBe(false);
    widget.kernelId = 'k1';
    expect(widget.isActive).toBe(true);
    expect(widget.node.textContent).toBe('⏳ aimodel: epoch 0/10');

    status.update('k2', { ...progress, epoch: 7 });
    status.update('k1', progress);
    expect(widget.node.textContent).toBe('⏳ aimodel: epoch 3/10 · ETA 0:12');
    expect(widget.node.title).toBe('%train net X y --epochs 10\nrun abc123');
    widget.kernelId = 'k2';
    expect(widget.node.textContent).toBe('⏳ aimodel: epoch 7/10 · ETA 0:12');
    widget.kernelId = 'k1';

    status.update('k1', end);
    expect(widget.node.textContent).toBe('✓ aimodel: finished');
    expect(ended).toEqual([{ kernelId: 'k1', run: 'abc123', status: 'FINISHED' }]);
    await new Promise(resolve => setTimeout(resolve, 60));
    expect(widget.isActive).toBe(false);
    expect(widget.node.textContent).toBe('');
    expect(status.get('k2')).toBeDefined();
    expect(toggles).toBe(2);
    status.dispose();
  });

  it('ignores junk and clears a kernel whose comm closed early', () => {
    const status = new TrainingStatus(10);
    status.update('k', { hello: 1 });
    expect(status.get('k')).toBeUndefined();
    const comm: any = {};
    status.follow('k', comm, { content: { data: start } } as any);
    comm.onMsg({ content: { data: progress } });
    expect(status.get('k')!.message.epoch).toBe(3);
    comm.onClose({ content: { data: {} } });
    expect(status.get('k')).toBeUndefined();
    status.dispose();
  });
});
