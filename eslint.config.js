// ESLint (flat config, typescript-eslint): the layers of docs/ARCHITECTURE.md
// ("Rooms and what they may import") as rules, plus type imports, floating
// promises and the line length. `npm test` runs it before the tests.
import tseslint from 'typescript-eslint'

/** libp2p's networking stack: only the two host rooms may import it */
const LIBP2P = { regex: '^(libp2p|@libp2p/|@chainsafe/)', message: 'libp2p is imported only in node/src/host/ and relay/src/relay-host.ts (see docs/ARCHITECTURE.md)' }
/** key and address encodings core/keys.ts may use (no networking) */
const LIBP2P_ENCODINGS = { regex: '^(libp2p|@libp2p/(?!crypto/keys$|peer-id$|interface$)|@chainsafe/)', message: 'core/keys.ts may use libp2p\'s key and address encodings only' }
const NODE = { regex: '(^|/)node/src/', message: 'node/ internals are the node\'s: share through core/' }
const RELAY = { regex: '(^|/)relay/src/', message: 'relay/ internals are the relay\'s: share through core/' }
/** the web UIs share the API's types and rules from its one contract, and nothing else of the node */
const NODE_BUT_CONTRACT = { regex: '(^|/)node/src/(?!api/contract\\.js$)', message: 'the UI reaches the node over the local API: it may import node/src/api/contract.ts only' }
const APP = { regex: '(^|/)app/', message: 'app/ is the UI: it is reached over the local API' }
const LEVEL_IN_MESSAGING = { regex: '^(level|classic-level|memory-level)$|/store/level-store\\.js$', message: 'messaging depends on the MessageStore interface (store/types.ts), not on LevelDB' }

const rooms = (...patterns) => ['error', { patterns }]

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '**/*.js', '**/*.mjs'] },
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
      // node:test's describe/it return promises the runner itself awaits
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }]
      }],
      '@typescript-eslint/no-explicit-any': 'error'
    }
  },
  // the rooms: what each may import
  { files: ['core/**/*.ts'], rules: { 'no-restricted-imports': rooms(LIBP2P, NODE, RELAY, APP) } },
  { files: ['core/keys.ts'], rules: { 'no-restricted-imports': rooms(LIBP2P_ENCODINGS, NODE, RELAY, APP) } },
  { files: ['node/src/**/*.ts'], rules: { 'no-restricted-imports': rooms(LIBP2P, RELAY, APP) } },
  { files: ['node/src/host/**/*.ts'], rules: { 'no-restricted-imports': rooms(RELAY, APP) } },
  { files: ['node/src/messaging/**/*.ts'], rules: { 'no-restricted-imports': rooms(LIBP2P, RELAY, APP, LEVEL_IN_MESSAGING) } },
  { files: ['relay/src/**/*.ts'], rules: { 'no-restricted-imports': rooms(LIBP2P, NODE, APP) } },
  { files: ['relay/src/relay-host.ts'], rules: { 'no-restricted-imports': rooms(NODE, APP) } },
  { files: ['app/**/*.ts', 'app/**/*.tsx'], rules: { 'no-restricted-imports': rooms(LIBP2P, NODE_BUT_CONTRACT, RELAY) } },
  // source lines stay readable (tests are exempt: their fixtures and messages are long by nature)
  {
    files: ['core/**/*.ts', 'node/src/**/*.ts', 'relay/src/**/*.ts', 'app/**/*.ts', 'app/**/*.tsx'],
    rules: { 'max-len': ['error', { code: 160, ignoreUrls: true, ignoreRegExpLiterals: true }] }
  },
  // typed events: a part emits through TypedEventEmitter.emit (name and detail checked), never an unchecked CustomEvent
  {
    files: ['node/src/**/*.ts', 'relay/src/**/*.ts'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: "CallExpression[callee.property.name='dispatchEvent'] > NewExpression[callee.name='CustomEvent']",
        message: 'emit the event with emit(type, detail) of TypedEventEmitter: the name and detail are then type-checked'
      }]
    }
  }
)
