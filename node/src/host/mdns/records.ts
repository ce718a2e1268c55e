/**
 * Parley's DNS-SD records (RFC 6763) and how to read them back.
 *
 *   _parley._tcp.local           PTR  <peerId>._parley._tcp.local      (shared)
 *   <peerId>._parley._tcp.local  SRV  0 0 <port> p<tail>.local          (unique, cache-flush)
 *   <peerId>._parley._tcp.local  TXT  v=1 dnsaddr=<multiaddr>... a0=...  (unique, cache-flush)
 *   p<tail>.local                A    <ip>                               (unique, cache-flush)
 *   _services._dns-sd._udp.local PTR  _parley._tcp.local                 (service enumeration)
 *
 * The peer ID is the instance name, so names never collide and need no
 * probing. `dnsaddr=` entries carry the libp2p addresses (the Noise handshake
 * checks the peer ID, so a lie about an address only fails a dial); `aN=`
 * entries carry an opaque advert in chunks (the signed profile).
 */
import type * as dnsPacket from 'dns-packet'

export const SERVICE_TYPE = '_parley._tcp.local'
export const SERVICE_ENUMERATION = '_services._dns-sd._udp.local'
/**
 * What Parley 0.1.0 announced with @libp2p/mdns (issue 11, migration): PTR to `<random>._parley._udp.local`,
 * whose TXT holds `dnsaddr=<multiaddr>/p2p/<peerId>` entries, unsigned. Browsed only to say "needs an update".
 */
export const LEGACY_SERVICE_TYPE = '_parley._udp.local'
const MAX_ADDRS = 16
/** RFC 6763 §6.1: a TXT string is at most 255 bytes; advert chunks stay below with their key. */
const ADVERT_CHUNK_BYTES = 240
export const MAX_ADVERT_CHUNKS = 4
export const MAX_ADVERT_BYTES = ADVERT_CHUNK_BYTES * MAX_ADVERT_CHUNKS

export interface SelfRecords {
  peerId: string
  /** multiaddrs with /p2p/<peerId> */
  addrs: string[]
  /** opaque text peers get with our records (up to MAX_ADVERT_BYTES) */
  advert?: string
}

/** Signs the TXT strings (the host signs with the device key, so a record cannot claim another peer's ID). */
export type SignRecord = (payload: Uint8Array) => Uint8Array
export type VerifyRecord = (peerId: string, payload: Uint8Array, sig: Uint8Array) => boolean

/** What the `s=` signature covers: the instance and every other TXT string, in order. */
export const signedPayload = (instance: string, strings: string[]): Uint8Array =>
  Buffer.from(['parley-mdns-v1', instance.toLowerCase(), ...strings].join('\n'))

export type Answer = dnsPacket.Answer
/** A record or question as read off the wire (dns-packet's types are too narrow for what peers send). */
export interface Rr { name: string, type: string, class?: string, ttl?: number, flush?: boolean, data?: unknown }

export const instanceName = (peerId: string): string => `${peerId}.${SERVICE_TYPE}`
export const hostName = (peerId: string): string => `p${peerId.slice(-16).toLowerCase()}.local`

const sameName = (a: string, b: string): boolean => a.length === b.length && a.toLowerCase() === b.toLowerCase()
export { sameName }

/** Splits the advert into TXT strings on UTF-8 boundaries. */
function advertChunks (advert: string): string[] {
  const out: string[] = []
  let cur = ''
  let bytes = 0
  for (const ch of advert) {
    const n = Buffer.byteLength(ch)
    if (bytes + n > ADVERT_CHUNK_BYTES) { out.push(cur); cur = ''; bytes = 0 }
    cur += ch
    bytes += n
  }
  if (cur !== '') out.push(cur)
  if (out.length > MAX_ADVERT_CHUNKS) throw new RangeError(`advert longer than ${MAX_ADVERT_BYTES} bytes`)
  return out.map((c, i) => `a${i}=${c}`)
}

const ipOf = (ma: string): { family: 'A' | 'AAAA', ip: string, port: number } | null => {
  const m = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d+)/.exec(ma)
  if (m === null) return null
  return { family: m[1] === 'ip4' ? 'A' : 'AAAA', ip: m[2] as string, port: Number(m[3]) }
}

/** Our records with `ttl` seconds (0: goodbye). */
export function selfRecords (self: SelfRecords, ttl: number, sign?: SignRecord): { ptr: Answer, srv: Answer | null, txt: Answer, hosts: Answer[] } {
  const instance = instanceName(self.peerId)
  const host = hostName(self.peerId)
  const ips = self.addrs.map(ipOf).filter(x => x !== null)
  const port = ips[0]?.port
  const txt = ['v=1', ...self.addrs.slice(0, MAX_ADDRS).map(a => `dnsaddr=${a}`), ...(self.advert !== undefined ? advertChunks(self.advert) : [])]
  if (sign !== undefined) txt.push(`s=${Buffer.from(sign(signedPayload(instance, txt))).toString('base64')}`)
  return {
    ptr: { name: SERVICE_TYPE, type: 'PTR', ttl, data: instance },
    srv: port === undefined ? null : { name: instance, type: 'SRV', ttl, flush: true, data: { port, target: host, priority: 0, weight: 0 } },
    txt: { name: instance, type: 'TXT', ttl, flush: true, data: txt },
    hosts: [...new Set(ips.map(i => `${i.family} ${i.ip}`))].map(s => {
      const [type, ip] = s.split(' ') as ['A' | 'AAAA', string]
      return { name: host, type, ttl, flush: true, data: ip }
    })
  }
}

export interface SeenInstance {
  peerId: string
  instance: string
  addrs: string[]
  advert?: string
  /** seconds; 0 is a goodbye */
  ttl: number
  /** the TXT strings without the signature, and the signature (absent: unsigned) */
  strings: string[]
  sig?: Uint8Array
}

const txtStrings = (data: unknown): string[] => {
  const list = Array.isArray(data) ? data : [data]
  return list.map(x => Buffer.isBuffer(x) ? x.toString('utf8') : typeof x === 'string' ? x : '').filter(s => s !== '')
}

/**
 * The Parley instances a response tells about: each TXT record of an instance
 * of our service (or one named by a PTR of our service), with its libp2p
 * addresses; all of them must name the same peer ID. The TTL is the PTR's
 * when the packet has one for the instance, else the TXT's.
 */
export function readInstances (records: Rr[]): SeenInstance[] {
  // one packet is read by every discovery instance on a shared socket: parse it once
  const memo = parsed.get(records)
  if (memo !== undefined) return memo
  const out = parseInstances(records)
  parsed.set(records, out)
  return out
}

const parsed = new WeakMap<Rr[], SeenInstance[]>()

/** A known-answer list read once: our service's PTR targets (lower case) with their TTL, and the other records. */
export interface KnownIndex { ptr: Map<string, number>, others: Rr[] }

const indexed = new WeakMap<Rr[], KnownIndex>()
/**
 * The known answers of one query packet, indexed. Memoised by the packet's
 * answer list, which every discovery instance on a shared socket sees: in
 * the office benchmark one process answers for 125 colleagues, and each
 * used to lower-case and compare up to 500 names per query.
 */
export function knownIndex (answers: Rr[]): KnownIndex {
  let idx = indexed.get(answers)
  if (idx === undefined) {
    idx = { ptr: new Map(), others: [] }
    for (const r of answers) {
      if (r.type === 'PTR' && typeof r.data === 'string' && sameName(r.name, SERVICE_TYPE)) {
        const k = r.data.toLowerCase()
        idx.ptr.set(k, Math.max(idx.ptr.get(k) ?? 0, r.ttl ?? 0))
      } else idx.others.push(r)
    }
    indexed.set(answers, idx)
  }
  return idx
}

const recordKeys = new WeakMap<SeenInstance, string>()
/** What a verified record is remembered by: its TXT strings and signature (memoised per parsed record). */
export function recordKey (seen: SeenInstance): string {
  let k = recordKeys.get(seen)
  if (k === undefined) {
    k = [...seen.strings, seen.sig === undefined ? '' : Buffer.from(seen.sig).toString('base64')].join('\n')
    recordKeys.set(seen, k)
  }
  return k
}

const verified = new WeakMap<VerifyRecord, WeakMap<SeenInstance, boolean>>()
/** `verify` applied to a parsed record, once per record and check function (every instance on a shared socket asks). */
export function verifySeen (verify: VerifyRecord, seen: SeenInstance): boolean {
  if (seen.sig === undefined) return false
  let byRecord = verified.get(verify)
  if (byRecord === undefined) { byRecord = new WeakMap(); verified.set(verify, byRecord) }
  let ok = byRecord.get(seen)
  if (ok === undefined) {
    ok = verify(seen.peerId, signedPayload(seen.instance, seen.strings), seen.sig)
    byRecord.set(seen, ok)
  }
  return ok
}

/** The Parley 0.1.0 peers a response tells about (LEGACY_SERVICE_TYPE, unsigned: the Noise handshake checks the peer ID). */
export function readLegacyInstances (records: Rr[]): SeenInstance[] {
  return parseInstances(records, LEGACY_SERVICE_TYPE)
}

function parseInstances (records: Rr[], service = SERVICE_TYPE): SeenInstance[] {
  const ptrTtl = new Map<string, number>()
  for (const r of records) {
    if (r.type === 'PTR' && sameName(r.name, service) && typeof r.data === 'string') ptrTtl.set(r.data.toLowerCase(), r.ttl ?? 0)
  }
  const out: SeenInstance[] = []
  for (const r of records) {
    if (r.type !== 'TXT') continue
    const key = r.name.toLowerCase()
    const ofService = key.endsWith(`.${service}`)
    if (!ofService && !ptrTtl.has(key)) continue
    const strings = txtStrings(r.data)
    const addrs: string[] = []
    const chunks: string[] = []
    const signed: string[] = []
    let sig: Uint8Array | undefined
    let peerId: string | undefined
    let consistent = true
    for (const s of strings) {
      if (s.startsWith('s=')) { sig = Buffer.from(s.slice(2), 'base64'); continue }
      signed.push(s)
      if (s.startsWith('dnsaddr=')) {
        const ma = s.slice(8)
        const p2p = /\/p2p\/([1-9A-HJ-NP-Za-km-z]{40,60})$/.exec(ma)?.[1]
        if (p2p === undefined) continue
        if (peerId !== undefined && p2p !== peerId) consistent = false
        peerId = p2p
        if (addrs.length < MAX_ADDRS) addrs.push(ma)
      } else {
        const m = /^a([0-9])=/.exec(s)
        if (m !== null && Number(m[1]) < MAX_ADVERT_CHUNKS) chunks[Number(m[1])] = s.slice(3)
      }
    }
    if (peerId === undefined || !consistent) continue
    const complete = chunks.length > 0 && Array.from(chunks, c => c !== undefined).every(Boolean)
    out.push({
      peerId,
      instance: key,
      addrs,
      ...(complete ? { advert: chunks.join('') } : {}),
      ttl: ptrTtl.get(key) ?? r.ttl ?? 0,
      strings: signed,
      ...(sig !== undefined ? { sig } : {})
    })
  }
  return out
}
