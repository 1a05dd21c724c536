/**
 * Which script of a cgi-bin folder a request path names (resolve-script.ts does the walk and its refusals),
 * with the index scripts of a folder URL: "/dir/" runs the first of the index names found in dir, and "/dir"
 * (no trailing slash) is sent to "/dir/" with a 301 when dir has one, as Apache's mod_dir does.
 */
import { RequestError } from '../errors.js';
import { lookupScript, type ScriptLookup } from './resolve-script.js';

/** What cgiBin needs to find scripts: the folder, the interpreters by extension, the index names. */
export interface ScriptFinder {
  /** The cgi-bin folder (absolute). */
  folder: string;
  /** Interpreter path by extension (".php"); scripts with these extensions need only be readable. */
  interpreters: ReadonlyMap<string, string>;
  /** Extensions of `interpreters`, for lookupScript. */
  interpretedExtensions: ReadonlySet<string>;
  /** Index names, tried in order, as byte strings (UTF-8 bytes of the names). */
  index: readonly string[];
}

/** A script to run. */
export interface FoundScript {
  kind: 'script';
  /** Its real path. */
  scriptPath: string;
  /** The path from the mount to the script ("/sub/s.cgi"), a byte string: SCRIPT_NAME = mount + this. */
  scriptPart: string;
  /** PATH_INFO, a byte string ("" = none). */
  pathInfo: string;
  /** The interpreter to run it with, or undefined to execute it. */
  interpreter: string | undefined;
}

/** A folder URL without its trailing slash, whose folder has an index: answer 301 to `path` + "/". */
export interface SlashRedirect {
  kind: 'add-slash';
  /** The folder's path from the mount (a byte string, "" for the cgi-bin folder itself). */
  folderPart: string;
}

/**
 * Finds what `path` (a decoded byte string from the mount on, "" or starting with "/": PATH_INFO) names.
 * Throws a RequestError: 404 for nothing there, 403 for a refusal (lookupScript's), or for a folder without
 * an index script (no listing, as Apache without Indexes).
 */
export async function findScript(finder: ScriptFinder, path: string): Promise<FoundScript | SlashRedirect> {
  const found = await lookupScript(finder.folder, path, { interpretedExtensions: finder.interpretedExtensions });
  if (found.kind === 'script') return toFound(finder, found);
  const index = await findIndex(finder, found.folderPart);
  if (index === undefined) throw new RequestError(`cgi-host: folder has no index script (${describe(path)})`, 403);
  return found.trailingSlash ? index : { kind: 'add-slash', folderPart: found.folderPart };
}

/** The first index script of the folder at `folderPart`, or undefined when it has none. Throws 403 for one that can't run. */
async function findIndex(finder: ScriptFinder, folderPart: string): Promise<FoundScript | undefined> {
  for (const name of finder.index) {
    let found: ScriptLookup;
    try {
      found = await lookupScript(finder.folder, `${folderPart}/${name}`, { interpretedExtensions: finder.interpretedExtensions });
    } catch (error) {
      if (error instanceof RequestError && error.status === 404) continue;
      throw error;
    }
    // A folder of that name is no index script.
    if (found.kind === 'script') return toFound(finder, found);
  }
  return undefined;
}

function toFound(finder: ScriptFinder, found: Extract<ScriptLookup, { kind: 'script' }>): FoundScript {
  return {
    kind: 'script',
    scriptPath: found.scriptPath,
    scriptPart: found.scriptPart,
    pathInfo: found.pathInfo,
    interpreter: finder.interpreters.get(found.extension),
  };
}

function describe(value: string): string {
  const short = value.length > 80 ? `${value.slice(0, 80)}...` : value;
  return /^[\x20-\x7e]*$/.test(short) ? short : JSON.stringify(short);
}
