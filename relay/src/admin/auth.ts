/**
 * Who may use the admin listener: whoever holds the admin token (a file in
 * the data dir, mode 0600, made at first start) or, when the admin set one,
 * the admin password (kept as a scrypt hash, never in clear). A login gives a
 * session cookie; scripts and Prometheus send the token as a Bearer header.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { chmod, readFile, rm, writeFile } from 'node:fs/promises'
import { ParleyError } from '../../../core/errors.js'
import { refusal } from './refusal.js'

/** @default 12 hours */
export const DEFAULT_SESSION_TTL_MS = 12 * 3600_000
/** failed logins allowed per minute before logins pause. @default 5 */
const MAX_FAILURES_PER_MINUTE = 5
const LOCKOUT_MS = 30_000
const MIN_PASSWORD_CHARS = 10
const SCRYPT = { N: 16384, r: 8, p: 1, keyLen: 32 }

interface PasswordFile { v: 1, salt: string, hash: string }
interface Session { who: string, expiresAt: number }

const equal = (a: string, b: string): boolean => {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

async function derive (password: string, salt: Buffer): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, SCRYPT.keyLen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p }, (err, key) => {
      if (err !== null) reject(err); else resolve(key)
    })
  })
}

/** Reads the token file, or makes one (0600) the first time. */
export async function loadOrCreateToken (path: string): Promise<string> {
  try {
    const t = (await readFile(path, 'utf8')).trim()
    if (t.length >= 32) { await chmod(path, 0o600); return t }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const token = randomBytes(32).toString('base64url')
  await writeFile(path, token + '\n', { mode: 0o600 })
  await chmod(path, 0o600)
  return token
}

export class AdminAuth {
  private readonly sessions = new Map<string, Session>()
  private failures: number[] = []
  private lockedUntil = 0

  constructor (private readonly token: string, private readonly passwordPath: string, private readonly sessionTtlMs = DEFAULT_SESSION_TTL_MS) {}

  /** The admin token, as sent in `Authorization: Bearer ...`. */
  checkToken (given: string): boolean { return equal(given, this.token) }

  async hasPassword (): Promise<boolean> { return (await this.readPassword()) !== undefined }

  /** Sets (or with null removes) the admin password. */
  async setPassword (password: string | null): Promise<void> {
    if (password === null) { await rm(this.passwordPath, { force: true }); return }
    if (password.length < MIN_PASSWORD_CHARS) {
      throw refusal(`the admin password needs at least ${MIN_PASSWORD_CHARS} characters`, { reason: 'passwordShort', min: MIN_PASSWORD_CHARS })
    }
    const salt = randomBytes(16)
    const file: PasswordFile = { v: 1, salt: salt.toString('base64'), hash: (await derive(password, salt)).toString('base64') }
    await writeFile(this.passwordPath, JSON.stringify(file), { mode: 0o600 })
    await chmod(this.passwordPath, 0o600)
  }

  /** Checks a login (token or password); returns a session id for the cookie. */
  async login (creds: { token?: string, password?: string, name?: string }, now = Date.now()): Promise<{ session: string, who: string }> {
    if (now < this.lockedUntil) {
      const seconds = Math.ceil((this.lockedUntil - now) / 1000)
      throw refusal(`too many failed logins: try again in ${seconds} s`, { reason: 'loginLocked', seconds }, 'ERR_UNAUTHORIZED')
    }
    let ok = false
    if (typeof creds.token === 'string') ok = this.checkToken(creds.token.trim())
    else if (typeof creds.password === 'string') ok = await this.checkPassword(creds.password)
    if (!ok) {
      this.failures = [...this.failures.filter(t => t > now - 60_000), now]
      if (this.failures.length >= MAX_FAILURES_PER_MINUTE) { this.lockedUntil = now + LOCKOUT_MS; this.failures = [] }
      throw refusal('wrong admin token or password', { reason: 'loginWrong' }, 'ERR_UNAUTHORIZED')
    }
    const name = (creds.name ?? '').replace(/[\p{Cc}\p{Cf}]/gu, '').trim().slice(0, 60)
    const who = `console:${name === '' ? 'admin' : name}`
    const session = randomBytes(24).toString('base64url')
    this.sessions.set(session, { who, expiresAt: now + this.sessionTtlMs })
    return { session, who }
  }

  /** The session's `who`, or undefined when unknown or expired; a used session lives on (sliding expiry). */
  session (id: string, now = Date.now()): string | undefined {
    const s = this.sessions.get(id)
    if (s === undefined) return undefined
    if (s.expiresAt < now) { this.sessions.delete(id); return undefined }
    s.expiresAt = now + this.sessionTtlMs
    return s.who
  }

  logout (id: string): void { this.sessions.delete(id) }

  private async readPassword (): Promise<PasswordFile | undefined> {
    try {
      const v = JSON.parse(await readFile(this.passwordPath, 'utf8')) as PasswordFile
      return v.v === 1 ? v : undefined
    } catch {
      return undefined
    }
  }

  private async checkPassword (password: string): Promise<boolean> {
    const file = await this.readPassword()
    if (file === undefined) return false
    const key = await derive(password, Buffer.from(file.salt, 'base64'))
    const want = Buffer.from(file.hash, 'base64')
    return key.length === want.length && timingSafeEqual(key, want)
  }
}
