/**
 * Real Ed25519 peer IDs (generated once with createIdentityBytes) for tests
 * that only need well-formed IDs; saves loading libp2p in those files.
 */
export const PEER_A = '12D3KooWAJWhUeGvCnsQuDeWe82aVyk9WnfdFUFvv3U6QyYcFswn'
export const PEER_B = '12D3KooWA6rJy59E2tRDPu2aD2FsrVf5NzCd48nes63FEueL1UgV'
export const PEER_C = '12D3KooWPzDeQhpLStRF1KbHPWb5beGLyb3o1rnV66qC1ZA6J9tY'
export const PEER_D = '12D3KooWMmcKTgXWwGbGETGUvLU1T6WtEp7C1EJefvjNftsc2UiT'
export const PEER_E = '12D3KooWMK1CGqJeYV83VGGX83Q2K9LtW3LKFmfZz4thp6Jv7nwc'
