/**
 * The literal subset of gin (github.com/google/gin-config) needed to read the `config.gin` that
 * learned_optimization writes beside a learned optimizer's `params`: the operative config of the
 * run that trained it, which holds the architecture (e.g. `HyperV2.lstm_hidden_size = 512`).
 *
 * Read like learned_optimization's opt_from_checkpoint does it: a backslash at the end of a line
 * joins it to the next (gin writes long values as `key = \` + an indented value), comments start
 * with '#', and every `[scope/…/]Configurable.param = value` statement is a binding; a value may
 * also span lines inside brackets, as Python's tokenizer (which gin uses) allows. Values are the
 * literals gin's parser accepts: ints, floats, strings ('…', "…", adjacent ones joined), True,
 * False, None, tuples and lists (both read as arrays), dicts, configurable references
 * (`@scope/Name`, `@Name()`) and macros (`%NAME`). Nothing is evaluated or imported.
 *
 * The file is input like any other: its size is bounded, and a statement that cannot be read is
 * left out and reported in `skipped` (as gin's skip_unknown leaves unknown configurables out)
 * without stopping the rest; text from it only reaches messages through `printable`.
 */
import { CheckpointError, printable } from '../error.js';

/** A configurable reference: `@scope/Name` (evaluate false) or `@scope/Name()` (evaluate true). */
export interface GinReference {
  /** The scoped name without the '@' (e.g. 'HyperV2', 'train/Adam'). */
  readonly reference: string;
  readonly evaluate: boolean;
}

/** A macro use, `%NAME` (or `%scope/NAME`); ginParam resolves it when the macro is bound. */
export interface GinMacro {
  readonly macro: string;
}

/** A dict literal, as its entries in order (keys may be any literal). */
export interface GinDict {
  readonly dict: [GinValue, GinValue][];
}

/** A gin literal. Tuples and lists are both arrays. */
export type GinValue = number | string | boolean | null | GinValue[] | GinReference | GinMacro | GinDict;

export interface GinSkipped {
  /** 1-based line in the file where the statement starts. */
  line: number;
  /** Why it was left out. */
  reason: string;
  /** The start of the statement, printable and shortened. */
  text: string;
}

export interface GinConfig {
  /** Each binding by its key as written: 'HyperV2.lstm_hidden_size', 'train/Adam.learning_rate', or a macro name. A key bound twice keeps its last value, as in gin. */
  bindings: Record<string, GinValue>;
  /** Statements left out: unparseable lines, values outside the literal subset, binding blocks, includes. */
  skipped: GinSkipped[];
  /** Modules named by `import` / `from … import` statements (not imported). */
  imports: string[];
}

export interface GinLimits {
  /** Longest text, in UTF-16 code units (default 1 MiB; an operative config is a few KB). */
  maxChars: number;
  /** Deepest nesting of tuples, lists and dicts in one value. */
  maxDepth: number;
}

export const GIN_LIMITS: Readonly<GinLimits> = Object.freeze({ maxChars: 1024 * 1024, maxDepth: 32 });

/** Reads the bindings of a gin config (see the module comment). Throws only for text over the size limit. */
export function readGinBindings(text: string, label: string, limits: Partial<GinLimits> = {}): GinConfig {
  const bounds: GinLimits = { ...GIN_LIMITS, ...limits };
  if (text.length > bounds.maxChars) {
    throw new CheckpointError(label, undefined, `the gin config is ${text.length} characters, over the ${bounds.maxChars}-character limit`);
  }
  const source = joinContinuations(text);
  const config: GinConfig = { bindings: {}, skipped: [], imports: [] };
  /** The line from `pos`, printable and shortened, for a report. */
  const lineText = (pos: number): string => {
    const lineEnd = source.text.indexOf('\n', pos);
    return printable(source.text.slice(pos, lineEnd < 0 ? undefined : Math.min(lineEnd, pos + 200)).trim(), 120);
  };
  let offset = 0;
  // Text scanned so far. Each character is scanned once, except after an unclosed bracket, where
  // reading resumes on the next line and rescans: the budget keeps a file with unclosed brackets
  // on every line from costing quadratic time.
  let scanned = 0;
  const budget = 16 * source.text.length + 100_000;
  while (offset < source.text.length) {
    if (scanned > budget) {
      config.skipped.push({ line: source.lineAt(offset), reason: 'the rest of the file is not read: too many unclosed brackets', text: lineText(offset) });
      break;
    }
    const scan = scanStatement(source.text, offset);
    scanned += scan.next - offset;
    if (scan.first < 0) break;
    const skip = (reason: string): void => {
      config.skipped.push({ line: source.lineAt(scan.first), reason, text: lineText(scan.first) });
    };
    if (scan.unclosed) {
      // The bracket would swallow the rest of the file: leave this line out and read on from the next.
      skip('a bracket opened here is never closed');
      const next = source.text.indexOf('\n', scan.first);
      offset = next < 0 ? source.text.length : next + 1;
      continue;
    }
    offset = scan.next;
    try {
      readStatement(tokenize(source.text, scan.first, scan.end), config, bounds);
    } catch (error) {
      if (!(error instanceof GinSyntax)) throw error;
      skip(error.message);
      if (error instanceof GinBlock) {
        // Leave the block's lines out with it: indented, blank or comment lines (Python's
        // tokenizer sees no dedent before the next statement at column 0).
        while (offset < source.text.length && /[ \t\r\f\n#]/.test(source.text[offset] as string)) {
          const nl = source.text.indexOf('\n', offset);
          offset = nl < 0 ? source.text.length : nl + 1;
        }
      }
    }
  }
  return config;
}

/**
 * The value bound to `configurable.param` in any scope (`HyperV2.lstm_hidden_size`,
 * `opt_from_checkpoint__x/HyperV2.lstm_hidden_size`, or module-qualified
 * `…hyper_v2.HyperV2.lstm_hidden_size`), with macros resolved; undefined when unbound. Two
 * scopes that bind it to different values are an error, since the caller cannot know which
 * one the trained optimizer used.
 */
export function ginParam(bindings: Record<string, GinValue>, configurable: string, param: string, label = 'config.gin'): GinValue | undefined {
  const found: { key: string; value: GinValue }[] = [];
  for (const [key, value] of Object.entries(bindings)) {
    const selector = key.slice(key.lastIndexOf('/') + 1);
    const dot = selector.lastIndexOf('.');
    if (dot < 0 || selector.slice(dot + 1) !== param) continue;
    const name = selector.slice(0, dot);
    if (name === configurable || name.endsWith(`.${configurable}`)) found.push({ key, value: resolveMacros(bindings, value, 0) });
  }
  const first = found[0];
  if (first === undefined) return undefined;
  const other = found.find((f) => !sameValue(f.value, first.value));
  if (other !== undefined) {
    throw new CheckpointError(
      label,
      `${printable(configurable, 60)}.${printable(param, 60)}`,
      `bound to different values in different scopes: '${printable(first.key, 100)}' = ${showValue(first.value)}, '${printable(other.key, 100)}' = ${showValue(other.value)}`,
    );
  }
  return first.value;
}

// ---------------------------------------------------------------------------------------------

class GinSyntax extends Error {}
/** A binding block (`Configurable:` then indented `param = value` lines), which is not read. */
class GinBlock extends GinSyntax {}

interface Token {
  type: 'name' | 'number' | 'string' | 'op' | 'error';
  text: string;
  /** The value of a number or string token. */
  value?: number | string;
  /** Why an error token is one. */
  problem?: string;
  pos: number;
  end: number;
}

/** The text with every backslash-newline removed (as opt_from_checkpoint does), and a way back to the file's line numbers. */
function joinContinuations(text: string): { text: string; lineAt: (pos: number) => number } {
  const parts: string[] = [];
  // lineStarts[i]: the 1-based file line on which output line i begins.
  const lineStarts: number[] = [1];
  const newlines: number[] = [];
  let fileLine = 1;
  let outLength = 0;
  const re = /\\\r?\n|\r?\n/g;
  let last = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const piece = text.slice(last, m.index);
    parts.push(piece);
    outLength += piece.length;
    fileLine++;
    if (m[0].startsWith('\\')) {
      // joined: the output line goes on
    } else {
      parts.push('\n');
      newlines.push(outLength);
      outLength += 1;
      lineStarts.push(fileLine);
    }
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  const joined = parts.join('');
  const lineAt = (pos: number): number => {
    // Output line of `pos`: the number of newlines before it (binary search).
    let lo = 0;
    let hi = newlines.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((newlines[mid] as number) < pos) lo = mid + 1;
      else hi = mid;
    }
    return lineStarts[lo] as number;
  };
  return { text: joined, lineAt };
}

const OPS = new Set(['=', ':', ',', '(', ')', '[', ']', '{', '}', '@', '%', '/', '.', '-']);
const OPEN = new Set(['(', '[', '{']);
const NUMBER =
  /(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?)[jJ]?/y;
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const STRING_START = /([rRbBuUfF]{0,2})('''|"""|'|")/y;

/**
 * Where the statement from `start` lies: from its first token (`first`, -1 when only blank and
 * comment lines remain) to the newline that ends it outside brackets (Python's logical line), or
 * the end of the text (`unclosed` when a bracket is still open there). A scan that builds nothing,
 * with the tokenizer's rules for strings and comments; `next` is where the following one starts.
 */
function scanStatement(text: string, start: number): { first: number; end: number; next: number; unclosed: boolean } {
  let depth = 0;
  let first = -1;
  let pos = start;
  const n = text.length;
  while (pos < n) {
    const c = text.charCodeAt(pos);
    if (c === 10) {
      if (depth === 0 && first >= 0) return { first, end: pos, next: pos + 1, unclosed: false };
      pos++;
    } else if (c === 32 || c === 9 || c === 13 || c === 12) {
      pos++;
    } else if (c === 35) {
      const nl = text.indexOf('\n', pos); // '#': a comment to the end of the line
      pos = nl < 0 ? n : nl;
    } else {
      if (first < 0) first = pos;
      if (c === 39 || c === 34) pos = skipString(text, pos);
      else {
        if (c === 40 || c === 91 || c === 123) depth++;
        else if ((c === 41 || c === 93 || c === 125) && depth > 0) depth--;
        pos++;
      }
    }
  }
  return { first, end: n, next: n, unclosed: depth > 0 };
}

/** The end of the string whose quote is at `pos` (a single-quoted one also ends at a line break, unterminated). */
function skipString(text: string, pos: number): number {
  const q = text[pos] as string;
  const triple = text.startsWith(q.repeat(3), pos);
  const close = triple ? q.repeat(3) : q;
  let i = pos + close.length;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') i += 2;
    else if (text.startsWith(close, i)) return i + close.length;
    else if (c === '\n' && !triple) return i;
    else i++;
  }
  return text.length;
}

/** The tokens between `first` and `end` (one statement); comments and line breaks produce none. */
function tokenize(text: string, first: number, end: number): Token[] {
  const tokens: Token[] = [];
  let pos = first;
  while (pos < end) {
    const c = text[pos] as string;
    if (c === '\n' || c === ' ' || c === '\t' || c === '\r' || c === '\f') {
      pos++;
      continue;
    }
    if (c === '#') {
      const nl = text.indexOf('\n', pos);
      pos = nl < 0 || nl > end ? end : nl;
      continue;
    }
    const token = readToken(text, pos);
    if (token.end > end) {
      // Cannot happen (scanStatement follows the same rules), but never read past the statement.
      tokens.push({ type: 'error', text: text.slice(pos, end), problem: 'an unterminated token', pos, end });
      break;
    }
    tokens.push(token);
    pos = token.end;
  }
  return tokens;
}

function readToken(text: string, pos: number): Token {
  STRING_START.lastIndex = pos;
  const s = STRING_START.exec(text);
  // A quote, or up to two of r, b, u, f right before one (a prefix; readString refuses bad ones).
  if (s !== null) return readString(text, pos, s[1] as string, s[2] as string);
  NAME.lastIndex = pos;
  const name = NAME.exec(text);
  if (name !== null) return { type: 'name', text: name[0], pos, end: pos + name[0].length };
  const c = text[pos] as string;
  if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[pos + 1] ?? ''))) {
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text) as RegExpExecArray; // a digit or '.digit' always matches
    const raw = m[0];
    const end = pos + raw.length;
    // Python rejects a number run into a name or another number (e.g. `1abc`, `1.2.3`).
    if (/[A-Za-z0-9_.]/.test(text[end] ?? '')) return errorToken(text, pos, 'a malformed number');
    const value = numberValue(raw);
    if (typeof value === 'string') return { type: 'error', text: raw, problem: value, pos, end };
    return { type: 'number', text: raw, value, pos, end };
  }
  if (OPS.has(c)) return { type: 'op', text: c, pos, end: pos + 1 };
  return errorToken(text, pos, `an unexpected character '${printable(c, 8)}'`);
}

function errorToken(text: string, pos: number, problem: string): Token {
  let end = pos + 1;
  while (end < text.length && !/[\s,()[\]{}=#'"]/.test(text[end] as string)) end++;
  return { type: 'error', text: text.slice(pos, end), problem, pos, end };
}

/** A Python number literal's value, or why it is not read. */
function numberValue(raw: string): number | string {
  if (/[jJ]$/.test(raw)) return 'a complex number';
  const digits = raw.replace(/_/g, '');
  let value: number;
  if (/^0[xX]/.test(digits)) value = parseInt(digits.slice(2), 16);
  else if (/^0[oO]/.test(digits)) value = parseInt(digits.slice(2), 8);
  else if (/^0[bB]/.test(digits)) value = parseInt(digits.slice(2), 2);
  else {
    const isInt = /^\d+$/.test(digits);
    if (isInt && /^0\d/.test(digits) && /[1-9]/.test(digits)) return 'an integer with a leading zero (not Python syntax)';
    value = Number(digits);
    if (!isInt) return Number.isFinite(value) ? value : 'a float outside the float64 range';
  }
  return Number.isSafeInteger(value) ? value : 'an integer beyond ±2^53 - 1';
}

const SIMPLE_ESCAPES: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

function readString(text: string, pos: number, prefix: string, quote: string): Token {
  const lower = prefix.toLowerCase();
  const valid = ['', 'r', 'u', 'b', 'br', 'rb', 'f', 'fr', 'rf'];
  const raw = lower.includes('r');
  let i = pos + prefix.length + quote.length;
  let value = '';
  const triple = quote.length === 3;
  for (;;) {
    if (i >= text.length)
      return { type: 'error', text: text.slice(pos, Math.min(text.length, pos + 40)), problem: 'an unterminated string', pos, end: text.length };
    const c = text[i] as string;
    if (text.startsWith(quote, i)) {
      i += quote.length;
      break;
    }
    if (c === '\n' && !triple) return { type: 'error', text: text.slice(pos, i), problem: 'an unterminated string', pos, end: i };
    if (c === '\\' && i + 1 < text.length) {
      const e = text[i + 1] as string;
      if (raw) {
        value += c + e;
        i += 2;
        continue;
      }
      const simple = SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        value += simple;
        i += 2;
        continue;
      }
      const hexLength = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
      if (hexLength > 0) {
        const digits = text.slice(i + 2, i + 2 + hexLength);
        const code = /^[0-9a-fA-F]+$/.test(digits) && digits.length === hexLength ? parseInt(digits, 16) : NaN;
        if (!(code <= 0x10ffff)) return { type: 'error', text: text.slice(pos, i + 2), problem: `a bad \\${e} escape in a string`, pos, end: i + 2 };
        value += String.fromCodePoint(code);
        i += 2 + hexLength;
        continue;
      }
      const octal = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4));
      if (octal !== null) {
        value += String.fromCodePoint(parseInt(octal[0], 8));
        i += 1 + octal[0].length;
        continue;
      }
      if (e === 'N') return { type: 'error', text: text.slice(pos, i + 2), problem: 'a \\N{…} escape (not read)', pos, end: i + 2 };
      value += c + e; // Python keeps unknown escapes as they are
      i += 2;
      continue;
    }
    value += c;
    i++;
  }
  if (!valid.includes(lower)) return { type: 'error', text: text.slice(pos, i), problem: `a string with the prefix '${printable(prefix, 4)}'`, pos, end: i };
  if (lower.includes('b')) return { type: 'error', text: text.slice(pos, i), problem: 'a bytes literal (not read)', pos, end: i };
  if (lower.includes('f')) return { type: 'error', text: text.slice(pos, i), problem: 'an f-string (not a literal)', pos, end: i };
  return { type: 'string', text: text.slice(pos, i), value, pos, end: i };
}

/** One statement: a binding (recorded), an import (noted), or a GinSyntax error. */
function readStatement(tokens: Token[], config: GinConfig, bounds: GinLimits): void {
  let i = 0;
  const peek = (): Token | undefined => tokens[i];
  const fail = (what: string, token: Token | undefined = peek()): never => {
    if (token?.type === 'error') throw new GinSyntax(`${token.problem ?? 'unreadable text'} (${what})`);
    throw new GinSyntax(token === undefined ? `${what}, but the statement ends` : `${what}, found '${printable(token.text, 30)}'`);
  };
  const isOp = (text: string): boolean => peek()?.type === 'op' && peek()?.text === text;

  /** NAME (('/' | '.') NAME)*, with no space inside (gin checks the same). */
  const selector = (): string => {
    const first = peek();
    if (first?.type !== 'name') return fail('expected a name');
    let text = first.text;
    let end = first.end;
    i++;
    for (;;) {
      const sep = peek();
      const next = tokens[i + 1];
      if (sep?.type !== 'op' || (sep.text !== '/' && sep.text !== '.') || sep.pos !== end) break;
      if (next?.type !== 'name' || next.pos !== sep.end) return fail('a malformed selector', next);
      text += sep.text + next.text;
      end = next.end;
      i += 2;
    }
    return text;
  };

  const value = (depth: number): GinValue => {
    if (depth > bounds.maxDepth) fail(`a value nested deeper than ${bounds.maxDepth} levels`);
    const t = peek();
    if (t === undefined) return fail('expected a value');
    if (t.type === 'op' && OPEN.has(t.text)) {
      i++;
      const close = t.text === '(' ? ')' : t.text === '[' ? ']' : '}';
      const items: GinValue[] = [];
      const entries: [GinValue, GinValue][] = [];
      let sawComma = false;
      while (!isOp(close)) {
        const item = value(depth + 1);
        if (close === '}') {
          if (!isOp(':')) fail("expected ':' in a dict");
          i++;
          entries.push([item, value(depth + 1)]);
        } else items.push(item);
        if (isOp(',')) {
          sawComma = true;
          i++;
        } else if (!isOp(close)) fail(`expected ',' or '${close}'`);
      }
      i++;
      if (close === '}') return { dict: entries };
      if (close === ')' && items.length === 1 && !sawComma) return items[0] as GinValue;
      return items;
    }
    if (t.type === 'op' && t.text === '-') {
      const n = tokens[i + 1];
      if (n?.type !== 'number') return fail("expected a number after '-'", n);
      i += 2;
      return -(n.value as number);
    }
    if (t.type === 'number') {
      i++;
      return t.value as number;
    }
    if (t.type === 'string') {
      let s = '';
      while (peek()?.type === 'string') s += tokens[i++]!.value as string;
      return s;
    }
    if (t.type === 'name') {
      i++;
      if (t.text === 'True') return true;
      if (t.text === 'False') return false;
      if (t.text === 'None') return null;
      return fail('expected a literal', t);
    }
    if (t.type === 'op' && (t.text === '@' || t.text === '%')) {
      i++;
      const name = selector();
      if (t.text === '%') return { macro: name };
      let evaluate = false;
      if (isOp('(')) {
        i++;
        if (!isOp(')')) fail("expected ')' after '@…('");
        i++;
        evaluate = true;
      }
      return { reference: name, evaluate };
    }
    return fail('expected a value');
  };

  const head = peek() as Token;
  if (head.type === 'name' && (head.text === 'import' || head.text === 'from')) {
    i++;
    let module = selector();
    if (head.text === 'from') {
      if (peek()?.text !== 'import') fail("expected 'import'");
      i++;
      module += `.${selector()}`;
    }
    if (peek()?.text === 'as') {
      i++;
      selector();
    }
    if (i < tokens.length) fail('expected the end of the import');
    config.imports.push(module);
    return;
  }
  if (head.type === 'name' && head.text === 'include') fail('an include statement (included files are not read)', tokens[1] ?? head);
  const key = selector();
  if (isOp(':')) throw new GinBlock('a binding block (not read)');
  if (!isOp('=')) fail("expected '='");
  i++;
  const bound = value(0);
  if (i < tokens.length) fail('expected the end of the binding');
  if (key === '__proto__') Object.defineProperty(config.bindings, key, { value: bound, enumerable: true, writable: true, configurable: true });
  else config.bindings[key] = bound;
}

function isMacro(value: GinValue): value is GinMacro {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'macro' in value;
}

function resolveMacros(bindings: Record<string, GinValue>, value: GinValue, depth: number): GinValue {
  if (depth > 16) return value; // a macro cycle: leave it unresolved
  if (isMacro(value)) {
    const name = value.macro;
    const short = name.slice(name.lastIndexOf('/') + 1);
    const bound = Object.hasOwn(bindings, name) ? bindings[name] : Object.hasOwn(bindings, short) ? bindings[short] : undefined;
    return bound === undefined ? value : resolveMacros(bindings, bound, depth + 1);
  }
  if (Array.isArray(value)) return value.map((v) => resolveMacros(bindings, v, depth + 1));
  return value;
}

function sameValue(a: GinValue, b: GinValue): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function showValue(v: GinValue): string {
  return printable(JSON.stringify(v) ?? String(v), 60);
}
