#!/usr/bin/env node
// Runs the relay CLI through tsx's loader (no build step).
import { register } from 'tsx/esm/api'
register()
await import('../relay/src/cli.ts')
