/**
 * Translation for Parley's web apps (the desktop UI, the relay console), on the
 * platform's `Intl` alone: plurals by `Intl.PluralRules`, dates and times by
 * `Intl.DateTimeFormat`, "5 minutes ago" by `Intl.RelativeTimeFormat`, lists by
 * `Intl.ListFormat`. No library: these are the parts of ICU that a chat UI needs, and
 * every browser and Node ships them with full CLDR data for Chinese and English.
 *
 * A catalog is a function of the formatters that returns the app's messages:
 * plain strings, or functions of their arguments. The English catalog defines
 * the type (`Messages = ReturnType<typeof en>`), and every other catalog is typed
 * with it, so a missing key or a wrong argument is a type error, not a blank.
 *
 * ```ts
 * const en = (f: Formatters) => ({ unread: (n: number) => f.plural(n, { one: '# unread', other: '# unread' }) })
 * const zh: Catalog<ReturnType<typeof en>> = (f) => ({ unread: (n) => `${f.number(n)} 条未读` })
 * const i18n = createI18n({ en, 'zh-CN': zh }, pickLocale(navigator.languages))
 * i18n.t.unread(3) // "3 unread"
 * ```
 */

export const LOCALES = ['zh-CN', 'en'] as const
export type Locale = typeof LOCALES[number]
/** what the user picked in Settings: a locale, or the system's language */
export type LocaleChoice = Locale | 'auto'
/** @default 'en' */
export const DEFAULT_LOCALE: Locale = 'en'

export type PluralForms = Partial<Record<Intl.LDMLPluralRule, string>> & { other: string }

export interface Formatters {
  readonly locale: Locale
  /** the form for `n` by the language's plural rules, with `#` replaced by the formatted number */
  plural: (n: number, forms: PluralForms) => string
  number: (n: number) => string
  /** "14:05" */
  time: (ms: number) => string
  /** "Tuesday, 1 December 2026" */
  date: (ms: number) => string
  /** "1 Dec 2026, 14:05:09": full date and time, for tooltips and message info */
  dateTime: (ms: number) => string
  /** "Today", "Yesterday", else the full date: day separators */
  day: (ms: number, now?: number) => string
  /** "3 minutes ago", "yesterday", from the nearest unit */
  relative: (ms: number, now?: number) => string
  /** "Ana, Ben and Carol" */
  list: (items: readonly string[]) => string
}

export type Catalog<M> = (f: Formatters) => M

export interface I18n<M> {
  readonly locale: Locale
  readonly t: M
  readonly f: Formatters
}

/** The supported locale nearest to the user's preferred languages (`navigator.languages`). */
export function pickLocale (preferred: readonly string[], fallback: Locale = DEFAULT_LOCALE): Locale {
  for (const tag of preferred) {
    let lang: string
    try { lang = new Intl.Locale(tag).language } catch { continue }
    // any Chinese (zh-CN, zh-Hans, zh-SG, also zh-TW and zh-HK) reads Simplified better than English
    if (lang === 'zh') return 'zh-CN'
    if (lang === 'en') return 'en'
  }
  return fallback
}

/** The locale a choice in Settings stands for. */
export const resolveLocale = (choice: LocaleChoice, preferred: readonly string[]): Locale =>
  choice === 'auto' ? pickLocale(preferred) : choice

export const isLocaleChoice = (v: unknown): v is LocaleChoice => v === 'auto' || (LOCALES as readonly unknown[]).includes(v)

const DAY_MS = 86_400_000
const RELATIVE_STEPS: Array<[Intl.RelativeTimeFormatUnit, number]> = [
  ['second', 1000], ['minute', 60_000], ['hour', 3_600_000], ['day', DAY_MS], ['week', 7 * DAY_MS], ['month', 30 * DAY_MS], ['year', 365 * DAY_MS]
]

const startOfDay = (ms: number): number => { const d = new Date(ms); d.setHours(0, 0, 0, 0); return d.getTime() }

/** The formatters of one locale (each `Intl` object made once). */
export function formatters (locale: Locale): Formatters {
  const rules = new Intl.PluralRules(locale)
  const num = new Intl.NumberFormat(locale)
  const time = new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit' })
  const date = new Intl.DateTimeFormat(locale, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' })
  const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'medium' })
  const rel = new Intl.RelativeTimeFormat(locale, { numeric: 'auto' })
  const list = new Intl.ListFormat(locale, { style: 'long', type: 'conjunction' })
  const relative = (ms: number, now = Date.now()): string => {
    const diff = ms - now
    let step = RELATIVE_STEPS[0] as [Intl.RelativeTimeFormatUnit, number]
    for (const s of RELATIVE_STEPS) if (Math.abs(diff) >= s[1]) step = s
    return rel.format(Math.round(diff / step[1]), step[0])
  }
  return {
    locale,
    plural: (n, forms) => (forms[rules.select(n)] ?? forms.other).replaceAll('#', num.format(n)),
    number: (n) => num.format(n),
    time: (ms) => time.format(ms),
    date: (ms) => date.format(ms),
    dateTime: (ms) => dateTime.format(ms),
    day: (ms, now = Date.now()) => {
      const days = Math.round((startOfDay(now) - startOfDay(ms)) / DAY_MS)
      if (days === 0 || days === 1) return capitalize(rel.format(-days, 'day'), locale)
      return date.format(ms)
    },
    relative,
    list: (items) => list.format(items)
  }
}

const capitalize = (s: string, locale: Locale): string => s.charAt(0).toLocaleUpperCase(locale) + s.slice(1)

/** The messages of `locale` from its catalog. */
export function createI18n<M> (catalogs: Record<Locale, Catalog<M>>, locale: Locale): I18n<M> {
  const f = formatters(locale)
  return { locale, f, t: catalogs[locale](f) }
}
