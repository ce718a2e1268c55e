/** The console's i18n: the shared module with the console's catalogs; the choice is kept in localStorage. */
import { createContext } from 'preact'
import { useContext } from 'preact/hooks'
import { createI18n, isLocaleChoice, resolveLocale, type I18n, type LocaleChoice } from '../../shared/i18n.js'
import { en, zhCN, type Messages } from './messages.js'

const KEY = 'parley-console-locale'

export function savedChoice (): LocaleChoice {
  const v = localStorage.getItem(KEY)
  return isLocaleChoice(v) ? v : 'auto'
}

export function makeI18n (choice: LocaleChoice): I18n<Messages> {
  localStorage.setItem(KEY, choice)
  const i18n = createI18n({ en, 'zh-CN': zhCN }, resolveLocale(choice, navigator.languages))
  document.documentElement.lang = i18n.locale
  return i18n
}

export const I18nContext = createContext<I18n<Messages> | null>(null)

export function useI18n (): I18n<Messages> {
  const v = useContext(I18nContext)
  if (v === null) throw new Error('no I18nContext')
  return v
}

/** "1.5 MiB" */
export function bytes (n: number, f: I18n<Messages>['f']): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${f.number(Math.round(v * 10) / 10)} ${units[i] as string}`
}
