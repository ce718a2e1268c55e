// Electron main process entry: see shell.mjs (kept free of the electron import so it can be tested).
import * as electron from 'electron'
import { repoRoot, startShell } from './shell.mjs'

startShell(electron, { root: repoRoot(import.meta.url), argv: process.argv })
