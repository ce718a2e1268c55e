/** An admin API refusal: the English `message` (CLI, logs) and the same as data (`detail`) for the console's catalogs. */
import { ParleyError, type ErrorCode } from '../../../core/errors.js'
import type { AdminErrorDetail } from '../../../core/protocol/admin-api.js'

export const refusal = (message: string, detail: AdminErrorDetail, code: ErrorCode = 'ERR_INVALID_ARGUMENT'): ParleyError =>
  new ParleyError(code, message, { detail })
