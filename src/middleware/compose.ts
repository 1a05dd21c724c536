import type { App, Middleware } from '../types.js';

/**
 * Composes middleware into one. The first listed is the outermost: `compose(a, b)(app)` is `a(b(app))`, so a
 * request passes through `a`, then `b`, then `app`.
 *
 * Two forms:
 * - `compose(...middleware)` returns a Middleware. With no arguments it is the identity.
 * - `compose(...middleware, app)` returns the wrapped App directly. At run time the last argument is taken to be
 *   the App when it is a function declaring two or more parameters (`(environ, startResponse) => ...`, which
 *   is also the arity of the Apps tsgi's helpers build). An App declared with fewer parameters or with rest
 *   parameters cannot be told apart from a middleware; apply it with `compose(...middleware)(app)` instead.
 *
 * Throws a TypeError when an argument is not a function.
 */
export function compose(...middleware: Middleware[]): Middleware;
export function compose(...stack: [...Middleware[], App]): App;
export function compose(...stack: Array<Middleware | App>): Middleware | App {
  for (const [index, item] of stack.entries()) {
    if (typeof item !== 'function') {
      throw new TypeError(`compose: argument ${index} is not a function (${typeof item})`);
    }
  }
  const last = stack[stack.length - 1];
  if (last !== undefined && last.length >= 2) {
    const middleware = stack.slice(0, -1) as Middleware[];
    return applyMiddleware(middleware, last as App);
  }
  const middleware = stack as Middleware[];
  return (app: App): App => applyMiddleware(middleware, app);
}

function applyMiddleware(middleware: readonly Middleware[], app: App): App {
  let wrapped = app;
  // Innermost first, so that the first listed ends up outermost.
  for (let index = middleware.length - 1; index >= 0; index--) {
    const layer = middleware[index] as Middleware;
    wrapped = layer(wrapped);
    if (typeof wrapped !== 'function') {
      throw new TypeError(`compose: middleware ${index} did not return an app (${typeof wrapped})`);
    }
  }
  return wrapped;
}
