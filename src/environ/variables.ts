/**
 * Storing CGI variables whose names come off the wire. A name is any byte string, so it may also be the name
 * of an Object.prototype member: `obj["__proto__"] = value` would set the prototype (or, for a string, do
 * nothing) instead of creating the variable, and `obj["constructor"]` reads as present before anything was
 * stored. Decoders store through setVariable and test through hasVariable, so every name is an own property.
 */

/** Sets `name` as an own property of `target`, whatever the name (even "__proto__"). */
export function setVariable(target: Record<string, string>, name: string, value: string): void {
  if (name === '__proto__') Object.defineProperty(target, name, { value, writable: true, enumerable: true, configurable: true });
  else target[name] = value;
}

/** True when `target` holds a variable `name` of its own (never for inherited members such as "constructor"). */
export function hasVariable(target: object, name: string): boolean {
  return Object.hasOwn(target, name);
}
