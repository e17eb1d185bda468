import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

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
