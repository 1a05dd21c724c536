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

/**
 * Adds a variable that came off the wire where a name may repeat (FastCGI PARAMS, uwsgi vars, SCGI headers).
 * nginx passes a repeated request header as a repeated HTTP_* variable; the app must see what tsgi's HTTP
 * server gives it for the same request, so repeats of an HTTP_* variable are joined the way HTTP joins repeated
 * fields (RFC 9110 5.3): with ", ", and with "; " for HTTP_COOKIE (RFC 6265 5.4). Any other repeated name is a
 * web server setting given twice (a fastcgi_param after an include): the later one wins.
 * Conformance: every transport, the same environ (case "repeated-header" in testing/conformance-cases.ts).
 */
export function addVariable(target: Record<string, string>, name: string, value: string): void {
  if (name.startsWith('HTTP_') && Object.hasOwn(target, name)) {
    target[name] = `${target[name] as string}${name === 'HTTP_COOKIE' ? '; ' : ', '}${value}`;
    return;
  }
  setVariable(target, name, value);
}
