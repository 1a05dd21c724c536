/**
 * Storing CGI variables whose names come off the wire. A name is any byte string, so it may also be the name
 * of an Object.prototype member: `obj["__proto__"] = value` would set the prototype (or, for a string, do
 * nothing) instead of creating the variable, and `obj["constructor"]` reads as present before anything was
 * stored. Decoders store through setVariable and test through hasVariable, so every name is an own property,
 * in an object from newVariables, which has room for a request's variables in the object itself.
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

/**
 * The constructor behind newVariables. A function, not a class, so that its `prototype` can be
 * Object.prototype: what it makes is a plain object that nothing tells from `{}`.
 *
 * V8 gives the objects a constructor makes room for as many properties in the object itself as the
 * constructor's body has `this.x = ...` stores, plus eight: here ROOM_IN_OBJECT. The stores below never run
 * (nothing passes `reserve`) and add no property; they only make that room, so that a request's variables
 * (twenty-odd from nginx, its request headers, a dozen tsgi.* keys) live in the object itself. Without them an
 * object gets ten such slots, and variables stored by name as they are decoded (`target[name] = value`) turn
 * it into a slow dictionary once more spill out of it than it has slots, or twelve if that is more (V8's limit
 * for keyed stores): measured, every FastCGI environ from nginx was one, ~2 KB of garbage per request and a
 * hash lookup for every read. With the room, a request stays fast up to twice ROOM_IN_OBJECT variables.
 */
function RequestVariables(this: Record<string, string>, reserve?: true): void {
  if (reserve === true) {
    this.v0 = ''; this.v1 = ''; this.v2 = ''; this.v3 = ''; this.v4 = ''; this.v5 = ''; this.v6 = ''; this.v7 = '';
    this.v8 = ''; this.v9 = ''; this.v10 = ''; this.v11 = ''; this.v12 = ''; this.v13 = ''; this.v14 = ''; this.v15 = '';
    this.v16 = ''; this.v17 = ''; this.v18 = ''; this.v19 = ''; this.v20 = ''; this.v21 = ''; this.v22 = ''; this.v23 = '';
    this.v24 = ''; this.v25 = ''; this.v26 = ''; this.v27 = ''; this.v28 = ''; this.v29 = ''; this.v30 = ''; this.v31 = '';
    this.v32 = ''; this.v33 = ''; this.v34 = ''; this.v35 = ''; this.v36 = ''; this.v37 = ''; this.v38 = ''; this.v39 = '';
  }
}
RequestVariables.prototype = Object.prototype;

/** A new, empty object for one request's CGI variables, with room for them in the object itself (see above). */
export function newVariables(): Record<string, string> {
  return new (RequestVariables as unknown as new () => Record<string, string>)();
}

/** Properties an object from newVariables holds in itself (the stores in RequestVariables, plus V8's eight). */
const ROOM_IN_OBJECT = 48;

/**
 * V8 trims the room of a constructor's objects to what its first seven used (in-object slack tracking): were
 * those a health check's thirty variables, a request with sixty headers after them would spill more than that
 * and end up a dictionary again. So the first object is filled to the last slot (with names no request has)
 * before six more are made: the trimming then finds no room unused, whatever the first requests look like.
 */
function keepRoom(): void {
  const first = newVariables();
  for (let i = 0; i < ROOM_IN_OBJECT; i++) first[`\0room ${i}`] = '';
  for (let i = 0; i < 6; i++) newVariables();
}
keepRoom();
