#!/usr/bin/env node
// The node's CLI: the compiled program in dist/bin/ when it is fresh, else the TypeScript through tsx
// (scripts/programs.mjs).
import { launch } from '../scripts/programs.mjs'
await launch('parley')
