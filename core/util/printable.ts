/**
 * Text from the network (message text, names) for a terminal: C0/C1 control
 * characters (escape sequences, carriage returns, bells) and bidi overrides
 * are shown as \xNN or \u{NNNN}; a newline is kept but indented, so a message
 * cannot forge lines of `parley history` or `parley peers`.
 */
export function printable (text: string): string {
  return text
    .replace(/[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g, (c) => {
      const n = c.charCodeAt(0)
      return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`
    })
    .replace(/\n/g, '\n    ')
}
