// The demo page: trains a μP MLP with the shipped μLO and with Adam side by side, plotting both
// losses live (uPlot), and shows the model card of any dropped .lopt file. Text from files is set
// with textContent only, escaped of control characters first.
import '@tensorflow/tfjs-backend-webgl'; // registers 'webgl', offered where the browser has WebGL
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { initBrowserBackend, loadLearnedOptimizer, type BrowserBackendName, type LoadedLearnedOptimizer } from '../../browser.js';
import { printable, printableMessage } from '../../text/printable.js';
import { checkDemoConfig, decodeDemoImages, startDemoRun, type DemoConfig, type DemoImages, type DemoStep } from '../demoTraining.js';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el as T;
};
const status = (text: string) => ($('status').textContent = text);

// ---- tabs ----
for (const [tab, panel] of [
  ['tab-train', 'panel-train'],
  ['tab-card', 'panel-card'],
] as const) {
  $(tab).addEventListener('click', () => {
    for (const [t, p] of [
      ['tab-train', 'panel-train'],
      ['tab-card', 'panel-card'],
    ] as const) {
      $(t).setAttribute('aria-selected', String(t === tab));
      $(p).hidden = p !== panel;
    }
  });
}

// ---- training ----
const DATASET_FILES: Record<string, string> = { mnist: 'mnist8.bin', 'fashion-mnist': 'fashion8.bin' };
const images = new Map<string, DemoImages>();
let learned: LoadedLearnedOptimizer | null = null;
let backend: BrowserBackendName | null = null;
let plot: uPlot | null = null;

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function imagesOf(name: string): Promise<DemoImages> {
  let d = images.get(name);
  if (d === undefined) images.set(name, (d = decodeDemoImages(await fetchBytes(`./data/${DATASET_FILES[name]}`))));
  return d;
}

function newPlot(): uPlot {
  plot?.destroy();
  const el = $('plot');
  return new uPlot(
    {
      width: Math.min(940, el.clientWidth || 940),
      height: 320,
      scales: { x: { time: false }, y: { distr: 3 } },
      axes: [{ label: 'step' }, { label: 'training loss' }],
      series: [{ label: 'step' }, { label: 'μLO (mulo-mnist)', stroke: '#d62728', width: 2 }, { label: 'Adam', stroke: '#1f77b4', width: 2 }],
    },
    [[], [], []],
    el,
  );
}

function readConfig(): DemoConfig {
  const num = (id: string) => Number(($(id) as HTMLInputElement).value);
  return checkDemoConfig({ width: num('width'), depth: num('depth'), steps: num('steps'), batchSize: num('batch'), seed: num('seed'), adamLr: num('adam-lr') });
}

const cell = (row: string, cls: string, text: string) => ($(row).querySelector(`.${cls}`)!.textContent = text);

async function train(): Promise<void> {
  const button = $('train') as HTMLButtonElement;
  button.disabled = true;
  const result = $('result') as HTMLOutputElement;
  result.dataset['state'] = 'running';
  try {
    const config = readConfig();
    const wanted = ($('backend') as HTMLSelectElement).value as BrowserBackendName;
    if (backend !== wanted) backend = await initBrowserBackend({ backend: wanted, wasmPaths: new URL('./wasm/', location.href).href });
    const data = await imagesOf(($('dataset') as HTMLSelectElement).value);
    learned ??= await loadLearnedOptimizer('./mulo-mnist.lopt');
    plot = newPlot();
    const steps: number[] = [];
    const curves: { learned: number[]; adam: number[] } = { learned: [], adam: [] };
    const run = startDemoRun(data, config, learned);
    status(`training on ${backend}…`);
    let last: DemoStep | null = null;
    try {
      for (;;) {
        const s = await run.step();
        if (s === null) break;
        last = s;
        steps.push(s.step);
        curves.learned.push(s.learned);
        curves.adam.push(s.adam);
        if (s.step % 5 === 0 || s.step === config.steps - 1) {
          plot.setData([steps, curves.learned, curves.adam]);
          const sec = run.seconds();
          cell('row-learned', 'loss', s.learned.toPrecision(5));
          cell('row-adam', 'loss', s.adam.toPrecision(5));
          cell('row-learned', 'speed', ((s.step + 1) / Math.max(sec.learned, 1e-9)).toFixed(1));
          cell('row-adam', 'speed', ((s.step + 1) / Math.max(sec.adam, 1e-9)).toFixed(1));
          status(`training on ${backend}: step ${s.step + 1} of ${config.steps}`);
          await new Promise((r) => setTimeout(r, 0)); // let the page paint
        }
      }
      const acc = run.testAccuracy();
      cell('row-learned', 'accuracy', `${(acc.learned * 100).toFixed(2)}%`);
      cell('row-adam', 'accuracy', `${(acc.adam * 100).toFixed(2)}%`);
      status(`done: ${config.steps} steps on ${backend}; test accuracy on ${data.testCount} held-out images`);
      result.value = JSON.stringify({ config, backend, losses: curves, testAccuracy: acc, last });
      result.dataset['state'] = 'done';
    } finally {
      run.dispose();
    }
  } catch (e) {
    status(`error: ${printableMessage((e as Error).message, 400)}`);
    result.dataset['state'] = 'error';
  } finally {
    button.disabled = false;
  }
}

$('train-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void train();
});

// ---- model card of a dropped file ----
async function showCard(file: File): Promise<void> {
  const error = $('card-error');
  const card = $('card');
  error.hidden = true;
  card.replaceChildren();
  try {
    if (file.size > 64 * 1024 * 1024) throw new Error(`${printable(file.name)} is ${file.size} bytes; the page reads checkpoints up to 64 MiB`);
    const lo = await loadLearnedOptimizer(new Uint8Array(await file.arrayBuffer()), { maxBytes: 64 * 1024 * 1024 });
    const c = lo.checkpoint;
    const params = c.theta.shapes.reduce((n, s) => n + s.reduce((p, d) => p * d, 1), 0);
    const rows: [string, string][] = [
      ['file', printable(file.name, 120)],
      ['architecture', printable(c.arch, 80)],
      ['format', `${c.format} version ${c.version}`],
      ['meta-parameters', `${params.toLocaleString('en-US')} in ${c.theta.names.length} tensors`],
      ['config', printableMessage(JSON.stringify(c.config, null, 2), 2000)],
      ['provenance', printableMessage(JSON.stringify(c.provenance, null, 2), 2000)],
    ];
    if (c.eval !== undefined) rows.push(['evaluation', printableMessage(JSON.stringify(c.eval, null, 2), 4000)]);
    for (const [k, v] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      card.append(dt, dd);
    }
    lo.dispose();
  } catch (e) {
    error.textContent = `Not a usable learned-optimizer checkpoint: ${printableMessage((e as Error).message, 600)}`;
    error.hidden = false;
  }
}

const drop = $('drop');
drop.addEventListener('dragover', (ev) => {
  ev.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (ev) => {
  ev.preventDefault();
  drop.classList.remove('over');
  const file = ev.dataTransfer?.files[0];
  if (file) void showCard(file);
});
$('file').addEventListener('change', (ev) => {
  const input = ev.target as HTMLInputElement;
  const file = input.files?.[0];
  if (file) void showCard(file);
  input.value = ''; // choosing the same file again is a new change
});

// ---- start ----
async function start(): Promise<void> {
  const index = (await (await fetch('./data/index.json')).json()) as { datasets?: unknown };
  const select = $('dataset') as HTMLSelectElement;
  for (const name of Array.isArray(index.datasets) ? index.datasets : []) {
    if (typeof name !== 'string' || !(name in DATASET_FILES)) continue;
    const option = document.createElement('option');
    option.value = name;
    option.textContent = name === 'mnist' ? 'MNIST 8×8' : 'Fashion-MNIST 8×8';
    select.append(option);
  }
  status('ready: choose a width and depth, then Train');
  $('result').dataset['state'] = 'ready';
}
void start().catch((e: Error) => status(`error: ${printableMessage(e.message, 400)}`));
