/**
 * Text from input (a file, a recipe, a command line, a queue) as it may appear in a message:
 * shortened to `max` characters, with C0/C1 control characters written as `\uXXXX`, so that input
 * can never send terminal escape sequences (clear screen, colours, bell, OSC links) through an
 * error, a warning or a table. Every message that echoes input goes through this one helper.
 */
export function printable(s: string, max = 80): string {
  const short = s.length > max ? `${s.slice(0, max - 3)}...` : s;
  return short.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
