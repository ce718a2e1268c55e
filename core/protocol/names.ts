/**
 * Display names against impersonation. A name we send is NFKC-normalised;
 * a name we receive may predate that rule (a profile or group op signed
 * before the upgrade, e.g. "张伟（销售）" with fullwidth parentheses), so it
 * is checked and its signature verified as given, then shown as NFKC
 * (displayName). Either way a name holds no invisible character (Default_Ignorable_Code_Point: zero-width
 * space, soft hyphen, joiners outside emoji, bidi marks, ...) and no lone
 * surrogate, so two names that look alike are the same string or differ in
 * a visible character. The last case, a Cyrillic 'е' in "Bеn", is caught by
 * comparing confusable skeletons (Unicode TS #39, section 4) instead of the
 * names: the prototypes come from Unicode's confusables.txt, as shipped by the
 * `unhomoglyph` package (see docs/DEPENDENCIES.md).
 */
import { createRequire } from 'node:module'

/** confusables.txt as { source code point: prototype } (unhomoglyph's data.json, Unicode 13.0.0) */
const PROTOTYPES = createRequire(import.meta.url)('unhomoglyph/data.json') as Readonly<Record<string, string>>

const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/u
const DEFAULT_IGNORABLE_ALL = /\p{Default_Ignorable_Code_Point}/gu
/** a zero-width joiner between two pictographs is part of one emoji (👩‍💻), not an invisible character */
const EMOJI_JOINER = /(?<=\p{Extended_Pictographic}[\uFE0F\p{Emoji_Modifier}]?)\u200D(?=\p{Extended_Pictographic})/gu
/** a variation selector right after an emoji-capable character picks its text or emoji style (❤️) */
const EMOJI_STYLE = /(?<=\p{Emoji})[\uFE0E\uFE0F]/gu
/** lone surrogates (a well-formed pair is one code point here), private use, line and paragraph separators */
const UNSHOWABLE = /[\p{Cs}\p{Co}\u2028\u2029]/u
/** more combining marks in a row than any script needs: text that spills over its neighbours */
const MARK_PILE = /\p{M}{5}/u
const VISIBLE = /[^\p{White_Space}\p{M}]/u

const hex = (ch: string): string => `U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`

/**
 * Why `name` is not acceptable as a display name (beyond the length and
 * control-character rules of the wire), or null when it is. A name NFKC
 * would change is accepted (names signed before the NFKC rule stay valid);
 * the checks apply to the name as given and to its NFKC form, which is what
 * is shown (displayName). Local input is normalised before it is signed
 * (normalizeName), so what we send is always NFKC.
 */
export function displayNameProblem (name: string): string | null {
  const shown = displayName(name)
  for (const form of shown === name ? [name] : [name, shown]) {
    const unshowable = UNSHOWABLE.exec(form)
    if (unshowable !== null) return `name must not contain ${hex(unshowable[0])} (a lone surrogate, private-use or separator character)`
    const invisible = DEFAULT_IGNORABLE.exec(form.replace(EMOJI_JOINER, '').replace(EMOJI_STYLE, ''))
    if (invisible !== null) return `name must not contain the invisible character ${hex(invisible[0])}`
  }
  if (MARK_PILE.test(shown)) return 'name must not pile up more than four combining marks'
  if (!VISIBLE.test(shown)) return 'name must contain a visible character'
  return null
}

/** How a (checked) name from the wire or the store is shown and compared: its NFKC form. */
export function displayName (name: string): string {
  return name.normalize('NFKC')
}

/** Local input (CLI, API, settings): NFKC, so "Ｂｅｎ" (fullwidth) is stored and sent as "Ben". */
export function normalizeName (value: unknown): unknown {
  return typeof value === 'string' ? value.normalize('NFKC') : value
}

/**
 * The confusable skeleton of one string (UTS #39 section 4): NFD, default
 * ignorables removed, each code point replaced by its prototype, NFD again.
 * Equal skeletons mean the strings can be taken for one another.
 */
export function skeleton (s: string): string {
  let out = ''
  for (const ch of s.normalize('NFD').replace(DEFAULT_IGNORABLE_ALL, '')) out += PROTOTYPES[ch] ?? ch
  return out.normalize('NFD')
}

/**
 * The key under which two display names count as the same person's: the
 * skeleton, case-folded, and the skeleton of that (so "Bеn" with a Cyrillic
 * е, "ben", "BEN" and "Ben" share one key, and so do "Al" and "AI").
 */
export function nameKey (name: string): string {
  return skeleton(skeleton(name.normalize('NFKC')).toLowerCase())
}

export interface NamedKey { peerId: string, name: string, /** first seen, ms */ since: number }

/**
 * The first key seen with a name owns it: for every later key whose name has
 * the same key (nameKey), the key that had it first.
 */
export function earlierLookAlikes (keys: readonly NamedKey[]): Map<string, NamedKey> {
  const owner = new Map<string, NamedKey>()
  const out = new Map<string, NamedKey>()
  for (const k of [...keys].sort((a, b) => a.since - b.since)) {
    const key = nameKey(k.name)
    const first = owner.get(key)
    if (first === undefined) owner.set(key, k)
    else if (first.peerId !== k.peerId) out.set(k.peerId, first)
  }
  return out
}

/**
 * Why a key's name warns, as data the UI words in the reader's language:
 * `same-name` (another key used exactly this name first) or `look-alike`
 * (another key used `firstName`, which looks like `name`, first); `key` is
 * the last 8 characters of that earlier key.
 */
export interface NameWarning { code: 'same-name' | 'look-alike', key: string, firstName: string, name: string }

/** The warning for a key named `name` when `first` had that name (or one that looks like it) before. */
export function nameWarning (name: string, first: NamedKey | undefined): NameWarning | null {
  if (first === undefined) return null
  return { code: first.name === name ? 'same-name' : 'look-alike', key: first.peerId.slice(-8), firstName: first.name, name }
}

/** The same warning as an English sentence (CLI, log, `PeerView.keyWarning`). */
export function lookAlikeWarning (name: string, first: NamedKey | undefined): string | null {
  const w = nameWarning(name, first)
  if (w === null) return null
  const used = w.code === 'same-name' ? `the name "${w.name}"` : `the name "${w.firstName}", which looks like "${w.name}",`
  return `Another key (${w.key}) used ${used} before. This may be a new device, or someone else: compare safety numbers before you trust it.`
}
