// lopt's changes to tfjs's wasm backend, in Node and in a browser alike: cpu fallbacks for kernels
// wasm lacks, XNNPACK's fast matMul, a shared-buffer Identity and a block-copy Tile.
import { installWasmFallbacks } from './wasmFallbacks.js';
import { installFastMatMul } from './wasmFastMatMul.js';
import { installSharedIdentity } from './wasmSharedIdentity.js';
import { installFastTile } from './wasmFastTile.js';

/** Installs them (idempotent); call once the wasm backend is the current one. */
export function installWasmKernels(): void {
  installWasmFallbacks();
  installFastMatMul();
  installSharedIdentity();
  installFastTile();
}
