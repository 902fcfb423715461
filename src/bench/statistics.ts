/** Returns the median of `values`: the mean of the middle two for an even count, NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;

  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[middle]!;
  return (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Pairs two equally long series by index and returns `top[i] / bottom[i]`. */
export function pairedRatios(top: readonly number[], bottom: readonly number[]): number[] {
  return top.map((value, index) => value / (bottom[index] ?? Number.NaN));
}
