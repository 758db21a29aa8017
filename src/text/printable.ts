/**
 * Text from input (a file, a recipe, a command line, a queue) as it may appear in a message:
 * shortened to `max` characters, with C0/C1 control characters written as `\uXXXX`, so that input
 * can never send terminal escape sequences (clear screen, colours, bell, OSC titles and links)
 * through an error, a warning or a table. Every message that echoes input goes through here.
 */
export function printable(s: string, max = 80): string {
  const short = s.length > max ? `${s.slice(0, max - 3)}...` : s;
  return short.replace(CONTROL, escapeOne);
}

/**
 * A whole message, at the terminal boundary (the CLI's error and warning lines): as printable,
 * but line breaks stay line breaks, and it is cut only past `max` characters.
 */
export function printableMessage(s: string, max = 4000): string {
  return s
    .split('\n')
    .map((line) => line.replace(CONTROL, escapeOne))
    .join('\n')
    .slice(0, max);
}

/** Whether a string holds a control character: free text in recipes and suites must not. */
export function hasControlCharacters(s: string): boolean {
  return CONTROL_TEST.test(s);
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;
const CONTROL_TEST = /[\u0000-\u001f\u007f-\u009f]/;
const escapeOne = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
