/**
 * Reading rule ids out of source text and out of the docs, for test/docs/catalogue.test.ts.
 *
 * An id is a section letter (A-G: docs/conformance.md sections; F: the validator's rules) or T (a known failure
 * case) followed by a number 1-99, as comments write them: "(T33)", "conformance G8", "F18:", "B1-B18",
 * "A9/T34", `LintError('F18', ...)`.
 */

/** One id, standing alone: not inside a word or number ("UTF8", "T1mer", "0xE9", "\u00C3") nor a percent-escape ("%C3%A9"). */
const ID_RE = /(?<![\w%\\])([A-GT])([1-9][0-9]?)(?![\w%])/g;
/** A range of ids with one letter, "B1-B18" or "C7-C13": cites every id in between. */
const RANGE_RE = /(?<![\w%\\])([A-GT])([1-9][0-9]?)-\1([1-9][0-9]?)(?![\w%])/g;
/** Two hex digits and a space before an id, or a space and two hex digits after it: a run of bytes ("C3 A9"). */
const HEX_BYTE_BEFORE_RE = /(?:^|[^\w%])[0-9A-F]{2} $/;
const HEX_BYTE_AFTER_RE = /^ [0-9A-F]{2}(?![\w%])/;

/** An id cited in a text, with the 1-based line it is on. */
export interface CitedId {
  id: string;
  line: number;
}

/** The ids a text cites (ranges expanded), in order of appearance, each with its line. */
export function citedIds(text: string): CitedId[] {
  const found: CitedId[] = [];
  const lineAt = lineIndex(text);
  for (const match of text.matchAll(RANGE_RE)) {
    const [, letter, first, last] = match as unknown as [string, string, string, string];
    for (let n = Number(first) + 1; n < Number(last); n += 1) found.push({ id: `${letter}${n}`, line: lineAt(match.index) });
  }
  for (const match of text.matchAll(ID_RE)) {
    const start = match.index;
    const end = start + match[0].length;
    if (HEX_BYTE_BEFORE_RE.test(text.slice(Math.max(0, start - 4), start)) || HEX_BYTE_AFTER_RE.test(text.slice(end, end + 4))) continue;
    found.push({ id: match[0], line: lineAt(start) });
  }
  return found.sort((a, b) => a.line - b.line);
}

/** Maps an offset in `text` to its 1-based line number. */
function lineIndex(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((starts[mid] as number) <= offset) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  };
}
