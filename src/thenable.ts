/**
 * True for a thenable (Promises/A+ 1.2): an object or function with a `then` method. An app's result, a Node
 * handler's result and a supervised call's result may each be one, from any promise library, so they are
 * recognised by shape rather than with `instanceof Promise`.
 */
export function isThenable<T = unknown>(value: unknown): value is PromiseLike<T> {
  return ((typeof value === 'object' && value !== null) || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}
