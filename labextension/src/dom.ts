/**
 * A small DOM helper: every piece of payload text goes in through `textContent`.
 */

/**
 * Create an element with an optional class name and text.
 *
 * @param tag - The tag name.
 * @param className - Space-separated classes.
 * @param text - Text content (never parsed as HTML).
 */
export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}
