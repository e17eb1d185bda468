// How figures read on the page: the person's locale, units that fit the size. No DOM here.

const integerFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export function count(n: number): string {
  return integerFormat.format(n);
}

export function plural(n: number, noun: string): string {
  return `${count(n)} ${noun}${n === 1 ? '' : 's'}`;
}

export function percent(rate: number): string {
  if (rate > 0 && rate < 0.001) return '< 0.1 %';
  return `${(rate * 100).toLocaleString(undefined, { maximumFractionDigits: 1 })} %`;
}

export function millis(ms: number): string {
  if (ms >= 1000) {
    return `${(ms / 1000).toLocaleString(undefined, { maximumFractionDigits: 2 })} s`;
  }
  return `${ms.toLocaleString(undefined, { maximumFractionDigits: ms < 10 ? 1 : 0 })} ms`;
}

/** A bound of the latency histogram, short: 500 ms, 1 s, 60 s. */
function bound(ms: number): string {
  return ms >= 1000 ? `${ms / 1000} s` : `${ms} ms`;
}

/** The label of a histogram bucket [lower, upper): "< 1 ms", "20–50 ms", "≥ 60 s". */
export function bucketRange(lower: number, upper: number | null): string {
  if (upper === null) return `≥ ${bound(lower)}`;
  if (lower === 0) return `< ${bound(upper)}`;
  const [low, high] = [bound(lower), bound(upper)];
  const unit = (text: string) => text.replace(/^[\d.]+ /, '');
  return unit(low) === unit(high) ? `${low.replace(/ .*/, '')}–${high}` : `${low}–${high}`;
}

export function bucketTime(ms: number, bucket: '1m' | '1h' | '1d'): string {
  const date = new Date(ms);
  if (bucket === '1m') {
    return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  }
  if (bucket === '1h') {
    return date.toLocaleString(undefined, { weekday: 'short', hour: '2-digit', minute: '2-digit' });
  }
  return date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

export function ago(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}
