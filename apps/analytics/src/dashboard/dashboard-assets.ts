import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A file the dashboard serves from node_modules, by the name it has under `/assets/`. */
export interface DashboardAsset {
  name: string;
  contentType: string;
  body: Buffer;
}

export interface DashboardAssets {
  /** Public paths the page links to. */
  chartScript: string;
  chartStyle: string;
  byName: ReadonlyMap<string, DashboardAsset>;
}

/** The dashboard's own browser module: one JavaScript file per source file of client/. */
export interface ClientModules {
  /** The public path of the entry module (`/dashboard/main.js`). */
  entry: string;
  /** Each file's body by its name (`main.js`): what `/dashboard/:name` serves, nothing else. */
  byName: ReadonlyMap<string, Buffer>;
}

const require = createRequire(import.meta.url);

/**
 * The charting library (uPlot: ~50 KB, no dependencies), read once from node_modules so the
 * dashboard works in closed networks: no CDN. Its version is in the file name, so a browser
 * may cache it for good and an upgrade still reaches every browser at once.
 */
export function loadDashboardAssets(): DashboardAssets {
  let version: string;
  let script: Buffer;
  let style: Buffer;
  try {
    version = (
      JSON.parse(readFileSync(require.resolve('uplot/package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    script = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'));
    style = readFileSync(require.resolve('uplot/dist/uPlot.min.css'));
  } catch (error) {
    throw new Error(
      `the dashboard's charting library (npm package "uplot") is missing: run npm install (${String(error)})`,
    );
  }
  const assets: DashboardAsset[] = [
    {
      name: `uplot-${version}.min.js`,
      contentType: 'text/javascript; charset=utf-8',
      body: script,
    },
    { name: `uplot-${version}.min.css`, contentType: 'text/css; charset=utf-8', body: style },
  ];
  return {
    chartScript: `/assets/${assets[0].name}`,
    chartStyle: `/assets/${assets[1].name}`,
    byName: new Map(assets.map((asset) => [asset.name, asset])),
  };
}

const CLIENT_DIR = fileURLToPath(new URL('./client/', import.meta.url));
const MODULE_NAME = /^[a-z][a-z0-9-]*\.js$/;

/**
 * The browser module of client/: compiled by `npm run build` (its own tsconfig, DOM types) into
 * dist/ beside this file, read once here. Run from the TypeScript sources instead (the tests,
 * under ts-jest, without a build), the sources are transpiled here with the compiler the
 * build uses, a dev dependency that a built service never loads.
 */
export function loadClientModules(dir = CLIENT_DIR): ClientModules {
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch (error) {
    throw new Error(
      `the dashboard's browser module is missing (${String(error)}): run npm run build`,
    );
  }
  const compiled = files.filter((name) => MODULE_NAME.test(name));
  const byName = new Map<string, Buffer>();
  if (compiled.length > 0) {
    for (const name of compiled) byName.set(name, readFileSync(join(dir, name)));
  } else {
    for (const [name, body] of transpileSources(dir, files)) byName.set(name, body);
  }
  if (!byName.has('main.js')) {
    throw new Error(`the dashboard's browser module is missing in ${dir}: run npm run build`);
  }
  return { entry: '/dashboard/main.js', byName };
}

function transpileSources(dir: string, files: string[]): Map<string, Buffer> {
  const sources = files.filter((name) => /^[a-z][a-z0-9-]*\.ts$/.test(name));
  if (sources.length === 0) return new Map();
  const ts = require('typescript') as typeof import('typescript');
  return new Map(
    sources.map((name) => {
      const output = ts.transpileModule(readFileSync(join(dir, name), 'utf8'), {
        fileName: name,
        compilerOptions: { target: ts.ScriptTarget.ES2023, module: ts.ModuleKind.ES2022 },
      });
      return [name.replace(/\.ts$/, '.js'), Buffer.from(output.outputText)];
    }),
  );
}
