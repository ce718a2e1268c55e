/**
 * Invites as people receive them: a link (core/protocol/invite-link.ts),
 * its QR code (the `qrcode` package, as SVG) and a printable sheet with one
 * card per person. Everything shown is escaped: names come from a CSV file.
 */
import QRCode from 'qrcode'
import type { InviteSheetRow } from './directory.js'

/** An SVG QR code of `text` (error correction M: survives a crease in a printed sheet). */
export async function qrSvg (text: string): Promise<string> {
  return await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2, width: 256 })
}

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

const SHEET_CSS = `body{font-family:"Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;margin:12mm}
.card{display:inline-block;width:85mm;height:62mm;box-sizing:border-box;border:1px dashed #999;padding:4mm;margin:1mm;
vertical-align:top;page-break-inside:avoid;overflow:hidden}
.card svg{float:right;width:30mm;height:30mm}.name{font-size:16pt;font-weight:bold}.dept{color:#555}
.token{font-family:monospace;font-size:8pt;word-break:break-all;clear:both;padding-top:2mm}
.how{font-size:8pt;color:#333}`

/** A printable HTML sheet: one card per person with name, department, QR code and token. */
export async function inviteSheetHtml (rows: InviteSheetRow[], title: string): Promise<string> {
  const cards = await Promise.all(rows.map(async r => `<div class="card">${await qrSvg(r.link)}
<div class="name">${escapeHtml(r.name)}</div><div class="dept">${escapeHtml(r.department.join(' / '))}</div>
<div class="how">扫描二维码或在 Parley 设置中粘贴邀请码 · Scan the code, or paste the token in Parley's settings</div>
<div class="token">${escapeHtml(r.token)}</div>
<div class="how">有效期至 valid until ${escapeHtml(new Date(r.expiresAt).toISOString().slice(0, 10))}</div></div>`))
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${SHEET_CSS}</style></head>
<body>${cards.join('\n')}</body></html>`
}
