/**
 * jsdom lacks DragEvent, which @lumino/dragdrop subclasses when it loads (JupyterLab's own
 * jest shim defines it the same way).
 */
if (typeof globalThis.DragEvent === 'undefined') {
  globalThis.DragEvent = class DragEvent extends MouseEvent {
    constructor(type, init = {}) {
      super(type, init);
      this.dataTransfer = init.dataTransfer ?? null;
    }
  };
}
