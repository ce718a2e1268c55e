/**
 * The size limits of what people write, apart from the envelope code: the web UI imports them (via the
 * API contract) without bundling the parsers, which need Node.
 */

/** @default 16000 characters, measured by textLength */
export const MAX_TEXT_CHARS = 16_000
/**
 * A text's length against MAX_TEXT_CHARS, the one measure of the node, the envelope check and the UI's
 * composer: UTF-16 code units, so an emoji or CJK Extension B character outside the BMP counts 2.
 */
export const textLength = (text: string): number => text.length
/** @default 64 characters */
export const MAX_NAME_CHARS = 64
/** a reply quotes this many characters (code points: up to twice as many UTF-16 units) of the message it answers. @default 200 */
export const MAX_QUOTE_CHARS = 200
