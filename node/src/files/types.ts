/**
 * What the file subsystem keeps per transfer (durably, transfer-state.ts) and
 * what the API shows of it (TransferView, re-exported by api/contract.ts).
 */
import type { FileManifest } from '../../../core/protocol/file-manifest.js'

export type TransferDirection = 'out' | 'in'
/**
 * `active`: moving (or waiting for a source); `paused` by the user; `complete`: every chunk verified
 * (in: the file is in the downloads folder under its final name; out: every recipient has it);
 * `cancelled` by the user; `failed`: cannot finish (the sender's file changed or is gone).
 */
export type TransferState = 'active' | 'paused' | 'complete' | 'cancelled' | 'failed'

/** The relay's copy for recipients that are offline (out) */
export interface RelayCopy { state: 'uploading' | 'uploaded' | 'refused', code?: string, message?: string }

export interface TransferRecord {
  v: 1
  direction: TransferDirection
  fileId: string
  msgId: string
  conv: string
  author: string
  /** the peers this file is for (the envelope's recipients, without us): devices, every device of each recipient account */
  recipients: string[]
  /** out: the account of each recipient device, when some account has several (one device of each account done is done) */
  accounts?: Record<string, string>
  manifest: FileManifest
  /** out: the file sent; in: where it is (the final name once complete) */
  path: string
  /** in: the partial file, renamed to `path` after the last verified chunk */
  partPath?: string
  state: TransferState
  /** chunks verified and on disk (in), base64url bitmap */
  verified: string
  /** out: the recipients that said they have the whole file */
  done: string[]
  relay?: RelayCopy
  error?: string
  /** chunks that failed their hash or decryption, and were fetched again */
  rejected: number
  createdAt: number
  completedAt?: number
}

export interface TransferView {
  id: string
  direction: TransferDirection
  msgId: string
  conv: string
  /** the other peer (direct) or the group id */
  peer: string
  name: string
  size: number
  type: string
  state: TransferState
  /** bytes verified (in) or sent to the recipients (out, averaged over them) */
  bytes: number
  /** bytes per second over the last seconds, 0 when idle */
  speed: number
  /** seconds left at that speed, null when unknown */
  etaS: number | null
  /** in: where the file is, once complete */
  path: string | null
  relay?: RelayCopy
  /** why it is waiting or failed, in words */
  note?: string
  error?: string
  rejected: number
  /** out: how many recipients (people: accounts) have the whole file, of how many */
  recipientsDone?: number
  recipientsTotal?: number
}
