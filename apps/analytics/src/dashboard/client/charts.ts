// The page's charts, drawn by uPlot (served from /assets/, loaded before this module as a
// classic script: it is a global there, typed here from the package's own declarations).
import type uPlot from 'uplot';
import type { HistogramBucket, TimeseriesPoint } from './api.js';
import type { TimeRange } from './filters.js';
import { bucketRange, bucketTime, count, millis } from './format.js';

const UPlot = (globalThis as unknown as { uPlot: typeof uPlot }).uPlot;

const HEIGHT = 220;
export const COLORS = {
  requests: '#2563eb',
  rejected: '#d97706',
  errors: '#dc2626',
  latency: '#7c3aed',
  axis: '#647084',
  grid: '#eef1f5',
};

function axis(values?: uPlot.Axis['values']): uPlot.Axis {
  return {
    stroke: COLORS.axis,
    grid: { stroke: COLORS.grid, width: 1 },
    ticks: { stroke: COLORS.grid, width: 1 },
    ...(values && { values }),
  };
}

/** A chart as wide as its container, following it when the layout changes. */
function create(container: HTMLElement, options: Omit<uPlot.Options, 'width' | 'height'>): uPlot {
  const width = () => Math.max(container.clientWidth, 240);
  const chart = new UPlot(
    { ...options, width: width(), height: HEIGHT },
    [[], ...options.series.slice(1).map(() => [])],
    container,
  );
  new ResizeObserver(() => {
    if (container.clientWidth > 0 && width() !== chart.width) {
      chart.setSize({ width: width(), height: HEIGHT });
    }
  }).observe(container);
  return chart;
}

const integers: uPlot.Axis['values'] = (_u, ticks) =>
  ticks.map((t) => (Number.isInteger(t) ? count(t) : ''));

/**
 * Bars of requests with their rejected and error shares stacked from the bottom: errors (red),
 * then rejected (amber), then the rest (blue). Each series is drawn over the one before, so the
 * middle one is drawn as rejected + errors high; the legend shows each figure as it is.
 */
function stackedBars(
  data: { requests: number[]; rejected: number[]; errors: number[] },
  bars: uPlot.Series.PathBuilder,
): uPlot.Series[] {
  const bar = (label: string, stroke: string, alpha: string, shown: number[]): uPlot.Series => ({
    label,
    stroke,
    fill: stroke + alpha,
    width: 0,
    paths: bars,
    points: { show: false },
    value: (_u, v, _s, i) => (i == null || v == null ? '—' : count(shown[i] ?? 0)),
  });
  return [
    bar('Requests', COLORS.requests, 'cc', data.requests),
    bar('Rejected', COLORS.rejected, 'e6', data.rejected),
    bar('Errors', COLORS.errors, 'e6', data.errors),
  ];
}

function stackedData(data: { requests: number[]; rejected: number[]; errors: number[] }) {
  return [data.requests, data.rejected.map((r, i) => r + data.errors[i]), data.errors];
}

/** Requests per bucket and p95 per bucket over the range. */
export class TimeCharts {
  private volume?: uPlot;
  private latency?: uPlot;
  private xRange: [number, number] = [0, 1];
  private halfBucket = 0;
  private bucket: TimeRange['bucket'] = '1m';
  private shown = { requests: [] as number[], rejected: [] as number[], errors: [] as number[] };

  constructor(
    private readonly volumeContainer: HTMLElement,
    private readonly latencyContainer: HTMLElement,
  ) {}

  private ensure(): { volume: uPlot; latency: uPlot } {
    if (this.volume && this.latency) return { volume: this.volume, latency: this.latency };
    const time: uPlot.Series = {
      label: 'Time',
      value: (_u, x) => (x == null ? '—' : bucketTime((x - this.halfBucket) * 1000, this.bucket)),
    };
    const scales: uPlot.Scales = {
      // [from, now] for every range, data or not.
      x: { time: true, range: () => this.xRange },
      y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] },
    };
    const common = { scales, cursor: { drag: { x: false, y: false } }, legend: { live: true } };
    const bars = UPlot.paths.bars!({ size: [0.8, 40], gap: 1 });
    this.volume = create(this.volumeContainer, {
      ...common,
      series: [time, ...stackedBars(this.shown, bars)],
      axes: [axis(), { ...axis(integers), size: 60 }],
    });
    this.latency = create(this.latencyContainer, {
      ...common,
      series: [
        time,
        {
          label: 'p95',
          stroke: COLORS.latency,
          width: 2,
          spanGaps: false,
          points: { show: true, size: 5, fill: COLORS.latency },
          value: (_u, v, _s, i) => (i == null ? '—' : v == null ? 'no requests' : millis(v)),
        },
      ],
      axes: [axis(), { ...axis((_u, ticks) => ticks.map((t) => millis(t))), size: 60 }],
    });
    return { volume: this.volume, latency: this.latency };
  }

  draw(series: TimeseriesPoint[], range: TimeRange, now: number): void {
    const { volume, latency } = this.ensure();
    this.bucket = range.bucket;
    this.halfBucket = range.bucketMs / 2000;
    // uPlot's x is in seconds; each bar stands at the middle of its bucket.
    const xs = series.map((p) => Date.parse(p.ts) / 1000 + this.halfBucket);
    const first = series.length ? Date.parse(series[0].ts) : now - range.ms;
    this.xRange = [
      Math.min(first, now - range.ms) / 1000,
      Math.max(now, first + range.bucketMs) / 1000,
    ];
    this.shown.requests = series.map((p) => p.requests);
    this.shown.rejected = series.map((p) => p.rejected);
    this.shown.errors = series.map((p) => p.errors);
    volume.setData([xs, ...stackedData(this.shown)]);
    // A bucket without requests has no latency: a gap, not a 0 ms point.
    latency.setData([xs, series.map((p) => (p.requests > 0 ? p.p95_ms : null))]);
  }

  clear(): void {
    for (const chart of [this.volume, this.latency]) {
      chart?.setData([[], ...chart.series.slice(1).map(() => [])]);
    }
  }
}

/** The latency histogram of the selected tool: one bar per fixed log-scale bucket. */
export class HistogramChart {
  private chart?: uPlot;
  private buckets: HistogramBucket[] = [];
  private shown = { requests: [] as number[], rejected: [] as number[], errors: [] as number[] };

  constructor(private readonly container: HTMLElement) {}

  private ensure(): uPlot {
    if (this.chart) return this.chart;
    const label = (i: number) => {
      const bucket = this.buckets[i];
      return bucket ? bucketRange(bucket.lower_ms, bucket.upper_ms) : '';
    };
    this.chart = create(this.container, {
      scales: {
        x: { time: false, range: () => [-0.5, Math.max(this.buckets.length, 1) - 0.5] },
        y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.15 : 1] },
      },
      series: [
        { label: 'Duration', value: (_u, x) => (x == null ? '—' : label(x)) },
        ...stackedBars(this.shown, UPlot.paths.bars!({ size: [0.9, 60], gap: 1 })),
      ],
      axes: [
        {
          // One tick per bucket, labelled where there is room (every other one when narrow).
          ...axis((u, ticks) => {
            const every = Math.ceil((ticks.length * 84) / Math.max(u.width - 60, 1));
            return ticks.map((t) => (Number.isInteger(t) && t % every === 0 ? label(t) : ''));
          }),
          splits: () => this.buckets.map((_b, i) => i),
        },
        { ...axis(integers), size: 50 },
      ],
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
    });
    return this.chart;
  }

  draw(buckets: HistogramBucket[]): void {
    this.buckets = buckets;
    const chart = this.ensure();
    this.shown.requests = buckets.map((b) => b.requests);
    this.shown.rejected = buckets.map((b) => b.rejected);
    this.shown.errors = buckets.map((b) => b.errors);
    chart.setData([buckets.map((_b, i) => i), ...stackedData(this.shown)]);
  }

  clear(): void {
    this.buckets = [];
    this.chart?.setData([[], [], [], []]);
  }
}
