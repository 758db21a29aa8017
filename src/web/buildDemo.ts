// `npm run demo:web`: builds the browser demo into dist/web (a static folder: the page bundled by
// Vite, the 8×8 image subsets, the shipped μLO checkpoint, tfjs's wasm binaries). `--serve` then
// serves it on 127.0.0.1 (Vite's preview server).
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, preview } from 'vite';
import { initBackend } from '../backend/select.js';
import { loadImageDataset, type ImageDatasetName } from '../../tasks/data/images.js';
import { encodeDemoImages } from './demoTraining.js';

/** The repository root, from src/web (tests, tsx) or dist/src/web (the built script). */
const root = fileURLToPath(new URL(import.meta.url.includes('/dist/') ? '../../../' : '../../', import.meta.url));
export const DEMO_OUT = join(root, 'dist', 'web');
const TRAIN_EXAMPLES = 10_000;
const TEST_EXAMPLES = 2_000;
export const DEMO_CHECKPOINT = 'mulo-mnist';

/** The first examples of the train and test splits at 8×8, as the demo ships them; null when the dataset is not installed. */
export function demoImages(name: ImageDatasetName): Uint8Array | null {
  let ds;
  try {
    ds = loadImageDataset(name, 8);
  } catch {
    return null;
  }
  const pick = [...ds.splits.train.slice(0, TRAIN_EXAMPLES), ...ds.splits.test.slice(0, TEST_EXAMPLES)];
  const d = 64;
  const pixels = new Uint8Array(pick.length * d);
  const labels = new Uint8Array(pick.length);
  pick.forEach((ex, i) => {
    for (let k = 0; k < d; k++) pixels[i * d + k] = Math.round(ds.images[ex * d + k]! * 255);
    labels[i] = ds.labels[ex]!;
  });
  return encodeDemoImages({ side: 8, trainCount: TRAIN_EXAMPLES, testCount: TEST_EXAMPLES, pixels, labels });
}

export async function buildDemo(out = DEMO_OUT): Promise<string[]> {
  // The subsets are the tasks' own 8×8 images, resized by tfjs as the tasks do.
  await initBackend({ backend: 'wasm', log: () => {} });
  await build({
    root: join(root, 'src', 'web', 'page'),
    base: './',
    logLevel: 'warn',
    build: {
      outDir: out,
      emptyOutDir: true,
      target: 'es2022',
      chunkSizeWarningLimit: 4096,
      rollupOptions: {
        // zod's sources carry /* @__PURE__ */ comments in places Rollup ignores; harmless, and not ours.
        onwarn: (warning, warn) => {
          if (warning.code !== 'INVALID_ANNOTATION') warn(warning);
        },
      },
    },
  });
  const datasets: string[] = [];
  mkdirSync(join(out, 'data'), { recursive: true });
  for (const [name, file] of [
    ['mnist', 'mnist8.bin'],
    ['fashion-mnist', 'fashion8.bin'],
  ] as const) {
    const bytes = demoImages(name);
    if (bytes === null) continue;
    writeFileSync(join(out, 'data', file), bytes);
    datasets.push(name);
  }
  writeFileSync(join(out, 'data', 'index.json'), JSON.stringify({ datasets }));
  copyFileSync(join(root, 'checkpoints', `${DEMO_CHECKPOINT}.lopt`), join(out, `${DEMO_CHECKPOINT}.lopt`));
  const wasmDir = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  mkdirSync(join(out, 'wasm'), { recursive: true });
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
    const from = join(wasmDir, 'dist', f);
    if (existsSync(from)) copyFileSync(from, join(out, 'wasm', f));
  }
  return datasets;
}

async function main(): Promise<void> {
  const serve = process.argv.includes('--serve');
  const datasets = await buildDemo();
  console.log(`lopt demo: built ${DEMO_OUT} (datasets: ${datasets.join(', ')})`);
  if (serve) {
    const server = await preview({
      root: join(root, 'src', 'web', 'page'),
      build: { outDir: DEMO_OUT },
      preview: { host: '127.0.0.1', port: 4173, open: false },
    });
    server.printUrls();
  } else {
    console.log('serve it with: npm run demo:web -- --serve   (or any static server)');
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
