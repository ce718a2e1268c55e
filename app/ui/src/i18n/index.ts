/** The UI's catalogs, and the context that hands the current one to every view. */
import { createContext } from 'preact'
import { useContext } from 'preact/hooks'
import { createI18n, type I18n, type Locale } from '../../../shared/i18n.js'
import { en, type Messages } from './en.js'
import { zhCN } from './zh-CN.js'

export type UiI18n = I18n<Messages>
export type { Messages }

export const uiI18n = (locale: Locale): UiI18n => createI18n({ en, 'zh-CN': zhCN }, locale)

export const I18nContext = createContext<UiI18n>(uiI18n('en'))
export const useI18n = (): UiI18n => useContext(I18nContext)
