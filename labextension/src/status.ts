/**
 * The training indicator: `%train` progress pushed by the kernel over the `aimodel.status`
 * comm (no polling), kept per kernel and shown for the current notebook's kernel.
 *
 * The kernel opens the comm with a "start" message, sends "progress" (at most ~5/s), then
 * "end" and closes it. This module holds the state and the status bar widget; the plugin in
 * `index.ts` registers the comm target on every tracked notebook's kernel.
 */
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

/** The comm target the kernel opens while `%train` runs. */
export const COMM_TARGET = 'aimodel.status';

/** One message's `data` on the `aimodel.status` comm. */
export interface IStatusMessage {
  event: 'start' | 'progress' | 'end';
  run: string;
  epoch: number;
  epochs: number;
  fraction: number;
  eta_seconds: number | null;
  line: string;
  status: string;
}

/** What the indicator shows for one kernel. */
export interface ITrainingState {
  kernelId: string;
  message: IStatusMessage;
  /** Whether training is over (the state disappears after a few seconds). */
  ended: boolean;
}

/** Emitted when a training ends. */
export interface ITrainingEnded {
  kernelId: string;
  run: string;
  status: string;
}

const EVENTS = ['start', 'progress', 'end'];

function num(x: unknown, fallback: number): number {
  return typeof x === 'number' && Number.isFinite(x) ? x : fallback;
}

/** The message in a comm payload, or `null` when it is not one. */
export function parseStatusMessage(data: unknown): IStatusMessage | null {
  if (typeof data !== 'object' || data === null) {
    return null;
  }
  const d = data as Record<string, unknown>;
  if (!EVENTS.includes(d.event as string)) {
    return null;
  }
  const eta = d.eta_seconds;
  return {
    event: d.event as IStatusMessage['event'],
    run: typeof d.run === 'string' ? d.run : '',
    epoch: num(d.epoch, 0),
    epochs: num(d.epochs, 0),
    fraction: Math.min(1, Math.max(0, num(d.fraction, 0))),
    eta_seconds: typeof eta === 'number' && Number.isFinite(eta) && eta >= 0 ? eta : null,
    line: typeof d.line === 'string' ? d.line : '',
    status: typeof d.status === 'string' ? d.status : ''
  };
}

/** Seconds as `m:ss`, or `h:mm:ss` from an hour. */
export function formatEta(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

const END_TEXT: Record<string, string> = {
  FINISHED: '✓ aimodel: finished',
  KILLED: '■ aimodel: stopped',
  FAILED: '✗ aimodel: failed'
};

/** The status bar text, e.g. `⏳ aimodel: epoch 3/10 · ETA 0:12`. */
export function formatStatus(message: IStatusMessage): string {
  if (message.event === 'end') {
    return END_TEXT[message.status] ?? `aimodel: ${message.status.toLowerCase() || 'ended'}`;
  }
  const parts = ['⏳ aimodel:'];
  if (message.epochs > 0) {
    parts.push(`epoch ${message.epoch}/${message.epochs}`);
  } else {
    parts.push(message.event === 'start' ? 'training' : `${Math.round(message.fraction * 100)}%`);
  }
  let text = parts.join(' ');
  if (message.eta_seconds !== null) {
    text += ` · ETA ${formatEta(message.eta_seconds)}`;
  }
  return text;
}

/** The training state of every kernel that reported, with change and end signals. */
export class TrainingStatus {
  /**
   * @param lingerMs - How long an ended training stays visible.
   */
  constructor(readonly lingerMs = 4000) {}

  /** Emitted with the kernel id whenever that kernel's state changes. */
  get changed(): ISignal<this, string> {
    return this._changed;
  }

  /** Emitted when a training ends (the Models panel refreshes on it). */
  get trainingEnded(): ISignal<this, ITrainingEnded> {
    return this._ended;
  }

  /** The state of one kernel, if it is training or has just finished. */
  get(kernelId: string | undefined | null): ITrainingState | undefined {
    return kernelId ? this._states.get(kernelId) : undefined;
  }

  /** Apply one comm payload from a kernel; payloads that are not status messages are ignored. */
  update(kernelId: string, data: unknown): void {
    const message = parseStatusMessage(data);
    if (message === null) {
      return;
    }
    this._cancelTimer(kernelId);
    const ended = message.event === 'end';
    this._states.set(kernelId, { kernelId, message, ended });
    this._changed.emit(kernelId);
    if (ended) {
      this._ended.emit({ kernelId, run: message.run, status: message.status });
      this._timers.set(
        kernelId,
        setTimeout(() => this.clear(kernelId), this.lingerMs)
      );
    }
  }

  /** Forget a kernel's state (its comm closed early, it restarted or died). */
  clear(kernelId: string): void {
    this._cancelTimer(kernelId);
    if (this._states.delete(kernelId)) {
      this._changed.emit(kernelId);
    }
  }

  /**
   * Follow one comm opened by a kernel: its open message, then every message until it closes.
   *
   * @param kernelId - The kernel that opened the comm.
   * @param comm - The comm.
   * @param open - The comm_open message (its data is the "start" message).
   */
  follow(kernelId: string, comm: Kernel.IComm, open: KernelMessage.ICommOpenMsg): void {
    this.update(kernelId, open.content.data);
    comm.onMsg = msg => this.update(kernelId, msg.content.data);
    comm.onClose = () => {
      const state = this._states.get(kernelId);
      if (state && !state.ended) {
        this.clear(kernelId);
      }
    };
  }

  /** Stop all timers. */
  dispose(): void {
    for (const id of [...this._timers.keys()]) {
      this._cancelTimer(id);
    }
    Signal.clearData(this);
  }

  private _cancelTimer(kernelId: string): void {
    const timer = this._timers.get(kernelId);
    if (timer !== undefined) {
      clearTimeout(timer);
      this._timers.delete(kernelId);
    }
  }

  private _states = new Map<string, ITrainingState>();
  private _timers = new Map<string, ReturnType<typeof setTimeout>>();
  private _changed = new Signal<this, string>(this);
  private _ended = new Signal<this, ITrainingEnded>(this);
}

/** The status bar item (`span.aimodel-status`): the state of the current kernel. */
export class TrainingStatusWidget extends Widget {
  constructor(status: TrainingStatus) {
    super({ node: document.createElement('span') });
    this._status = status;
    this.addClass('aimodel-status');
    status.changed.connect(this._onChanged, this);
    this._render();
  }

  /** Emitted when the item should be shown or hidden. */
  get activeStateChanged(): ISignal<this, void> {
    return this._activeStateChanged;
  }

  /** Whether there is something to show for the current kernel. */
  get isActive(): boolean {
    return this._status.get(this._kernelId) !== undefined;
  }

  /** The kernel whose training is shown (the current notebook's). */
  get kernelId(): string | null {
    return this._kernelId;
  }

  set kernelId(id: string | null) {
    if (id !== this._kernelId) {
      this._kernelId = id;
      this._render();
    }
  }

  private _onChanged(_: TrainingStatus, kernelId: string): void {
    if (kernelId === this._kernelId) {
      this._render();
    }
  }

  private _render(): void {
    const state = this._status.get(this._kernelId);
    const wasActive = this._wasActive;
    this._wasActive = state !== undefined;
    if (state === undefined) {
      this.node.textContent = '';
      this.node.title = '';
      this.node.removeAttribute('data-event');
    } else {
      const m = state.message;
      this.node.textContent = formatStatus(m);
      this.node.title = [m.line, m.run ? `run ${m.run}` : ''].filter(Boolean).join('\n');
      this.node.dataset.event = m.event;
      this.node.classList.toggle('aimodel-status-failed', m.event === 'end' && m.status === 'FAILED');
      this.node.style.setProperty('--aimodel-progress', String(m.fraction));
    }
    if (wasActive !== this._wasActive) {
      this._activeStateChanged.emit();
    }
  }

  private _status: TrainingStatus;
  private _kernelId: string | null = null;
  private _wasActive = false;
  private _activeStateChanged = new Signal<this, void>(this);
}
